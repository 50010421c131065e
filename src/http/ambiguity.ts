/**
 * Requests that the sidecar and the service behind it could read differently
 * (spec.headers). The policy judges one reading of a request; nothing may let
 * the service act on another:
 *
 * - a singleton header sent twice (Node keeps the first Authorization or Host,
 *   a service or a proxy behind may keep the last, or join them);
 * - a method-override header (X-HTTP-Method-Override...): the policy judged
 *   POST, the framework behind runs DELETE;
 * - a path-override header (X-Original-URL, X-Rewrite-URL): the policy judged
 *   /public, the framework behind routes to /admin.
 *
 * Compiled once per policy; on the request path it costs a count of the header
 * names and a few property lookups unless one of those headers is present.
 * Runs right after path normalization (decidedBy "request"), before any stage.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Code } from '../errors/codes.ts';
import type { HeadersSpec } from '../policy/document.ts';

/**
 * Headers defined as singletons (RFC 9110 and friends) whose second copy some
 * component could prefer: credentials, routing, framing, origin checks, caching.
 */
export const SINGLETON_HEADERS = [
  'authorization',
  'proxy-authorization',
  'host',
  'content-type',
  'content-length',
  'transfer-encoding',
  'origin',
  'referer',
  'user-agent',
  'range',
  'if-range',
  'if-modified-since',
  'if-unmodified-since',
  'max-forwards',
  'date',
  'from',
] as const;

export const METHOD_OVERRIDE_HEADERS = ['x-http-method-override', 'x-http-method', 'x-method-override'] as const;
export const PATH_OVERRIDE_HEADERS = ['x-original-url', 'x-rewrite-url'] as const;

export type AmbiguityVerdict =
  /** `method`: the overriding method applied (methodOverride.action apply), else null. */
  | { readonly ok: true; readonly method: string | null }
  | { readonly ok: false; readonly code: Code; readonly detail: string; readonly reason: string };

/**
 * Checks one request. May change `headers` (the object that is judged and
 * forwarded): strips override headers, keeps the first of duplicates, as the
 * policy says.
 */
export type AmbiguityCheck = (method: string, rawHeaders: readonly string[], headers: IncomingHttpHeaders) => AmbiguityVerdict;

const OK: AmbiguityVerdict = Object.freeze({ ok: true, method: null });

// What the client is told: fixed sentences (docs/codes.md, "What the client is told"); the header
// names and values seen go to the decision event.
const DUPLICATE_DETAIL = 'a header that must appear at most once was sent more than once';
const METHOD_DETAIL = 'method-override headers are not accepted here; send the method itself';
const PATH_DETAIL = 'path-override headers are not accepted; send the path itself';

function refuse(code: Code, detail: string, reason: string): AmbiguityVerdict {
  return { ok: false, code, detail, reason };
}

/** A header value as it may appear in a decision event: printable, bounded, no query string. */
function shown(v: string, max = 100): string {
  const q = v.indexOf('?');
  const s = (q === -1 ? v : v.slice(0, q)).replace(/[^\x20-\x7e]/g, '?');
  return JSON.stringify(s.length > max ? `${s.slice(0, max)}...` : s);
}

/** `tokenHeaders`: the headers the policy reads a token from (from: header), singletons too. */
export function compileAmbiguityCheck(spec: HeadersSpec, tokenHeaders: readonly string[] = []): AmbiguityCheck {
  const singletons: ReadonlySet<string> = new Set([...SINGLETON_HEADERS, ...tokenHeaders.map((n) => n.toLowerCase()), ...spec.duplicates.singletons.map((n) => n.toLowerCase())]);
  const keepFirst = spec.duplicates.action === 'keepFirst';
  const pathHeaders = [...new Set([...PATH_OVERRIDE_HEADERS, ...spec.pathOverride.headers.map((n) => n.toLowerCase())])];
  const extraPathHeaders = pathHeaders.slice(PATH_OVERRIDE_HEADERS.length);
  const stripPath = spec.pathOverride.action === 'strip';
  const methodAction = spec.methodOverride.action;
  const overrideMethods: ReadonlySet<string> = new Set(spec.methodOverride.methods);

  function duplicates(rawHeaders: readonly string[], headers: IncomingHttpHeaders): AmbiguityVerdict | null {
    // Fast path: as many distinct names as raw lines means no name came twice.
    let distinct = 0;
    for (const _ in headers) distinct++;
    if (distinct * 2 === rawHeaders.length) return null;
    const seen = new Map<string, { first: string; count: number }>();
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
      const name = (rawHeaders[i] as string).toLowerCase();
      if (!singletons.has(name)) continue;
      const s = seen.get(name);
      if (s) s.count++;
      else seen.set(name, { first: rawHeaders[i + 1] as string, count: 1 });
    }
    for (const [name, s] of seen) {
      if (s.count < 2) continue;
      if (!keepFirst) return refuse('HEADER_DUPLICATE', DUPLICATE_DETAIL, `header ${name} sent ${s.count} times (spec.headers.duplicates.action: refuse)`);
      // Node already keeps the first of most singletons; others it joins with ", ": undo that.
      headers[name] = s.first;
    }
    return null;
  }

  function pathOverride(headers: IncomingHttpHeaders): AmbiguityVerdict | null {
    for (const name of pathHeaders) {
      const v = headers[name];
      if (v === undefined) continue;
      if (!stripPath) return refuse('PATH_OVERRIDE_NOT_ALLOWED', PATH_DETAIL, `path-override header ${name}: ${shown(String(v))} (spec.headers.pathOverride.action: refuse)`);
      delete headers[name];
    }
    return null;
  }

  function methodOverride(method: string, headers: IncomingHttpHeaders): AmbiguityVerdict | null | string {
    let present: string[] | null = null;
    for (const name of METHOD_OVERRIDE_HEADERS) if (headers[name] !== undefined) (present ??= []).push(name);
    if (present === null) return null;
    const values = present.map((n) => String(headers[n]));
    const said = present.map((n, i) => `${n}: ${shown(values[i] as string, 20)}`).join(', ');
    if (methodAction === 'refuse') return refuse('METHOD_OVERRIDE_NOT_ALLOWED', METHOD_DETAIL, `${said} on ${method} (spec.headers.methodOverride.action: refuse)`);
    for (const n of present) delete headers[n];
    if (methodAction === 'strip') return null;
    // apply: one overriding method, named the same way everywhere, on a POST, from the allowed list.
    if (method !== 'POST') return refuse('METHOD_OVERRIDE_NOT_ALLOWED', METHOD_DETAIL, `${said} on ${method}: only a POST may be overridden`);
    const wanted = new Set(values.map((v) => v.trim().toUpperCase()));
    const target = wanted.size === 1 ? ([...wanted][0] as string) : null;
    if (target === null || !overrideMethods.has(target)) {
      return refuse('METHOD_OVERRIDE_NOT_ALLOWED', METHOD_DETAIL, `${said}: ${target === null ? 'the headers disagree' : `not one of spec.headers.methodOverride.methods (${[...overrideMethods].join(', ')})`}`);
    }
    return target;
  }

  // The usual request has none of the override headers. Written out with literal names: a
  // loop of keyed lookups over a list of names cost ~10x more per request (bench/stages.ts).
  function anyPathOverride(h: IncomingHttpHeaders): boolean {
    if (h['x-original-url'] !== undefined || h['x-rewrite-url'] !== undefined) return true;
    for (const n of extraPathHeaders) if (h[n] !== undefined) return true;
    return false;
  }
  const anyMethodOverride = (h: IncomingHttpHeaders) => h['x-http-method-override'] !== undefined || h['x-http-method'] !== undefined || h['x-method-override'] !== undefined;

  return (method, rawHeaders, headers) => {
    const d = duplicates(rawHeaders, headers) ?? (anyPathOverride(headers) ? pathOverride(headers) : null);
    if (d) return d;
    if (!anyMethodOverride(headers)) return OK;
    const m = methodOverride(method, headers);
    if (m === null) return OK;
    if (typeof m === 'string') return { ok: true, method: m };
    return m;
  };
}
