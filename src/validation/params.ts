/**
 * Request parts as objects a schema can check: the query string (repeated
 * keys collected; OpenAPI styles form/explode, spaceDelimited,
 * pipeDelimited and deepObject), headers, and path parameters. Values stay
 * strings; the parameter validators coerce them to the declared types.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ParamSpec } from './operations.ts';

export type Query = Map<string, string[]>;

function decode(s: string): string | null {
  const t = s.indexOf('+') === -1 ? s : s.replace(/\+/g, ' ');
  if (t.indexOf('%') === -1) return t;
  try {
    return decodeURIComponent(t);
  } catch {
    return null;
  }
}

/** Parses a raw query string; null when it has invalid percent-encoding. */
export function parseQuery(qs: string): Query | null {
  const out: Query = new Map();
  if (qs.length === 0) return out;
  for (const pair of qs.split('&')) {
    if (pair.length === 0) continue;
    const eq = pair.indexOf('=');
    const k = decode(eq === -1 ? pair : pair.slice(0, eq));
    const v = decode(eq === -1 ? '' : pair.slice(eq + 1));
    if (k === null || v === null) return null;
    const list = out.get(k);
    if (list) list.push(v);
    else out.set(k, [v]);
  }
  return out;
}

function split(value: string, style: string): string[] {
  const sep = style === 'spaceDelimited' ? ' ' : style === 'pipeDelimited' ? '|' : ',';
  return value.split(sep);
}

/** The object of query values for declared parameters (undeclared ones are passed as strings too). */
export function queryObject(query: Query, params: readonly ParamSpec[] | null): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, vs] of query) out[k] = vs.length === 1 ? vs[0] : vs;
  if (!params) return out;
  for (const p of params) {
    if (p.in !== 'query') continue;
    if (p.style === 'deepObject') {
      const obj: Record<string, string> = {};
      const prefix = `${p.name}[`;
      let found = false;
      for (const [k, vs] of query) {
        if (k.startsWith(prefix) && k.endsWith(']')) {
          obj[k.slice(prefix.length, -1)] = vs[0] as string;
          delete out[k];
          found = true;
        }
      }
      if (found) out[p.name] = obj;
      continue;
    }
    const vs = query.get(p.name);
    if (!vs) continue;
    if (p.type === 'array' && (!p.explode || p.style !== 'form')) out[p.name] = vs.flatMap((v) => split(v, p.style));
    else if (p.type === 'array') out[p.name] = vs;
  }
  return out;
}

/** Header values of the declared header parameters (or all headers for inline schemas). */
export function headerObject(headers: IncomingHttpHeaders, params: readonly ParamSpec[] | null): Record<string, unknown> {
  if (!params) {
    const all: Record<string, unknown> = {};
    for (const k in headers) all[k] = headers[k];
    return all;
  }
  const out: Record<string, unknown> = {};
  for (const p of params) {
    if (p.in !== 'header') continue;
    const v = headers[p.name];
    if (v === undefined) continue;
    const s = Array.isArray(v) ? v.join(', ') : v;
    out[p.name] = p.type === 'array' ? s.split(',').map((x) => x.trim()) : s;
  }
  return out;
}

export function pathObject(params: Record<string, string>, specs: readonly ParamSpec[] | null): Record<string, unknown> {
  if (!specs) return { ...params };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) {
    const p = specs.find((s) => s.in === 'path' && s.name === k);
    out[k] = p?.type === 'array' ? v.split(',') : v;
  }
  return out;
}
