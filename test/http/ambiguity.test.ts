import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import { compileAmbiguityCheck } from '../../src/http/ambiguity.ts';
import type { HeadersSpec } from '../../src/policy/document.ts';

const DEFAULTS: HeadersSpec = {
  duplicates: { action: 'refuse', singletons: [] },
  methodOverride: { action: 'refuse', methods: ['PUT', 'PATCH', 'DELETE'] },
  pathOverride: { action: 'refuse', headers: [] },
};

/** Raw header lines and the view Node builds from them (first kept for its singletons, others joined). */
function request(lines: [string, string][]): { raw: string[]; headers: IncomingHttpHeaders } {
  const keepFirst = new Set(['authorization', 'host', 'content-type', 'content-length', 'user-agent', 'referer']);
  const headers: Record<string, string> = {};
  for (const [n, v] of lines) {
    const k = n.toLowerCase();
    if (headers[k] === undefined) headers[k] = v;
    else if (!keepFirst.has(k)) headers[k] = `${headers[k]}, ${v}`;
  }
  return { raw: lines.flat(), headers };
}

describe('spec.headers checks', () => {
  it('lets an ordinary request through untouched', () => {
    const check = compileAmbiguityCheck(DEFAULTS);
    const r = request([['Host', 'a'], ['Accept', 'x'], ['Accept', 'y'], ['Authorization', 'Bearer t']]);
    expect(check('GET', r.raw, r.headers)).toEqual({ ok: true, method: null });
    expect(r.headers).toEqual({ host: 'a', accept: 'x, y', authorization: 'Bearer t' });
  });

  it('treats the header a token is read from as a singleton', () => {
    const check = compileAmbiguityCheck(DEFAULTS, ['X-Api-Token']);
    const r = request([['x-api-token', 'a'], ['X-API-TOKEN', 'b']]);
    expect(check('GET', r.raw, r.headers)).toMatchObject({ ok: false, code: 'HEADER_DUPLICATE', reason: 'header x-api-token sent 2 times (spec.headers.duplicates.action: refuse)' });
  });

  it('keepFirst replaces a joined value by the first copy', () => {
    const check = compileAmbiguityCheck({ ...DEFAULTS, duplicates: { action: 'keepFirst', singletons: ['x-tenant'] } });
    const r = request([['X-Tenant', 'acme'], ['X-Tenant', 'globex'], ['Authorization', 'Bearer a'], ['Authorization', 'Bearer b']]);
    expect(check('GET', r.raw, r.headers)).toEqual({ ok: true, method: null });
    expect(r.headers).toEqual({ 'x-tenant': 'acme', authorization: 'Bearer a' });
  });

  it('apply names the overriding method and removes every override header', () => {
    const check = compileAmbiguityCheck({ ...DEFAULTS, methodOverride: { action: 'apply', methods: ['DELETE'] } });
    const r = request([['X-HTTP-Method-Override', 'delete'], ['X-Method-Override', 'DELETE '], ['Host', 'a']]);
    expect(check('POST', r.raw, r.headers)).toEqual({ ok: true, method: 'DELETE' });
    expect(r.headers).toEqual({ host: 'a' });
  });

  it('records an override value printable and bounded', () => {
    const check = compileAmbiguityCheck(DEFAULTS);
    const r = request([['X-HTTP-Method', `DEL\u0001${'E'.repeat(50)}`]]);
    const v = check('POST', r.raw, r.headers);
    expect(v).toMatchObject({ ok: false, code: 'METHOD_OVERRIDE_NOT_ALLOWED' });
    expect(!v.ok && v.reason).toBe(`x-http-method: "DEL?${'E'.repeat(16)}..." on POST (spec.headers.methodOverride.action: refuse)`);
  });
});
