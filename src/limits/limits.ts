/**
 * spec.limits compiled: the request-shape checks (URL length, header count
 * and bytes) and, per route, the body limits (size, JSON depth and keys,
 * allowed content types). The first route rule matching the method and path
 * overrides the global values it names.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Code } from '../errors/codes.ts';
import type { LimitsSpec } from '../policy/document.ts';
import { compilePathPattern, type PathPattern } from '../policy/path-pattern.ts';
import { inRange } from './media-type.ts';

export interface RouteLimits {
  /** The route rule that applies, or null for the global limits. */
  readonly rule: string | null;
  readonly maxBodyBytes: number;
  readonly maxJsonDepth: number;
  readonly maxJsonKeys: number;
  /** Allowed body media types; empty = any. */
  readonly contentTypes: readonly string[];
  readonly audit: boolean;
}

export interface ShapeViolation {
  readonly code: Code;
  /** For operators (the decision event): the measure and the limit. The client is not told the limit. */
  readonly reason: string;
}

export interface CompiledLimits {
  readonly audit: boolean;
  forRoute(method: string, path: string): RouteLimits;
  /** URL length and header count/bytes; null when within limits. */
  checkShape(path: string, query: string, headers: IncomingHttpHeaders): ShapeViolation | null;
  describe(method: string, path: string): string;
}

export function contentTypeAllowed(limits: RouteLimits, mediaType: string | null): boolean {
  if (limits.contentTypes.length === 0) return true;
  return mediaType !== null && limits.contentTypes.some((r) => inRange(mediaType, r));
}

export function compileLimits(spec: LimitsSpec): CompiledLimits {
  const global: RouteLimits = Object.freeze({
    rule: null,
    maxBodyBytes: spec.maxBodyBytes,
    maxJsonDepth: spec.maxJsonDepth,
    maxJsonKeys: spec.maxJsonKeys,
    contentTypes: spec.contentTypes,
    audit: spec.audit,
  });
  const ids = new Set<string>();
  const routes = spec.routes.map((r, i) => {
    if (ids.has(r.id)) throw new Error(`spec.limits.routes[${i}]: rule id "${r.id}" is used twice; rule ids must be unique`);
    ids.add(r.id);
    const limits: RouteLimits = Object.freeze({
      rule: r.id,
      maxBodyBytes: r.maxBodyBytes ?? spec.maxBodyBytes,
      maxJsonDepth: r.maxJsonDepth ?? spec.maxJsonDepth,
      maxJsonKeys: r.maxJsonKeys ?? spec.maxJsonKeys,
      contentTypes: r.contentTypes ?? spec.contentTypes,
      audit: r.audit || spec.audit,
    });
    const methods = r.methods.includes('*') ? null : new Set<string>(r.methods);
    const patterns: PathPattern[] = r.paths.map((p) => compilePathPattern(p));
    return { limits, methods, patterns };
  });

  function forRoute(method: string, path: string): RouteLimits {
    for (const r of routes) {
      if (r.methods && !r.methods.has(method)) continue;
      for (const p of r.patterns) if (p.match(path)) return r.limits;
    }
    return global;
  }

  return {
    audit: spec.audit,
    forRoute,
    checkShape(path, query, headers) {
      const urlLength = path.length + (query.length > 0 ? query.length + 1 : 0);
      if (urlLength > spec.maxUrlLength) return { code: 'URL_TOO_LONG', reason: `request target is ${urlLength} bytes; the limit is ${spec.maxUrlLength}` };
      let count = 0;
      let bytes = 0;
      for (const name in headers) {
        count++;
        const v = headers[name];
        bytes += name.length + (typeof v === 'string' ? v.length : Array.isArray(v) ? v.reduce((n, s) => n + s.length, 0) : 0);
      }
      if (count > spec.maxHeaderCount) return { code: 'HEADERS_TOO_LARGE', reason: `${count} header fields; the limit is ${spec.maxHeaderCount}` };
      if (bytes > spec.maxHeaderBytes) return { code: 'HEADERS_TOO_LARGE', reason: `${bytes} bytes of headers; the limit is ${spec.maxHeaderBytes}` };
      return null;
    },
    describe(method, path) {
      const l = forRoute(method, path);
      return `limits${l.rule ? ` (rule "${l.rule}")` : ''}: body <= ${l.maxBodyBytes} bytes, JSON depth <= ${l.maxJsonDepth}, <= ${l.maxJsonKeys} keys, content types ${l.contentTypes.length ? l.contentTypes.join(', ') : 'any'}; URL <= ${spec.maxUrlLength}, <= ${spec.maxHeaderCount} headers, <= ${spec.maxHeaderBytes} header bytes${l.audit ? ' (audit)' : ''}`;
    },
  };
}
