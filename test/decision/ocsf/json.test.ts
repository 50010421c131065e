import { describe, expect, it } from 'vitest';
import { encodeDecision, encodeDecisionJson } from '../../../src/decision/encode.ts';
import { eventJson, shared } from '../../../src/decision/ocsf/json.ts';
import type { DecisionRecord } from '../../../src/decision/record.ts';
import { blockedServiceRecord, brokenSocketRecord, jwtAllowRecord, noProtocolRecord, oddRecord } from './records.ts';

const base: readonly DecisionRecord[] = [jwtAllowRecord(), blockedServiceRecord(), oddRecord(), noProtocolRecord(), brokenSocketRecord()];

/** Variations that reach every optional member and odd value of the mapping. */
function variants(): DecisionRecord[] {
  const out: DecisionRecord[] = [];
  for (const r of base) {
    out.push(r);
    out.push({ ...r, traceId: null, rule: null, detail: 'quote " backslash \\ newline \n tab \t nul \u0000 snowman \u2603 lone \ud800 emoji \ud83d\ude00' });
    out.push({ ...r, traceId: '4bf92f3577b34da6a3ce929d0e0e4736', upstreamMs: 0.000123456789, durationMs: 1e21 });
    out.push({ ...r, durationMs: Number.NaN, upstreamMs: Number.POSITIVE_INFINITY, wouldDeny: [{ stage: 'authz', code: 'AUTHZ_DENY_RULE', rule: 'r"1' }] });
    out.push({ ...r, identity: r.identity ? { ...r.identity, claims: { nested: { a: [1, 'two', null, true, { '': -0 }] }, 'key "quoted"': 'v', undef: undefined, '__proto__x': 1 } } : null });
    out.push({ ...r, request: { ...r.request, path: '/ünïcödé/\u2028/', userAgent: 'ua\u007f', params: { id: '7' }, route: '/orders/{id}' }, client: { ...r.client, forwardedFor: ['10.0.0.1', 'not-an-ip', '::1'] } });
  }
  return out;
}

describe('event JSON writer', () => {
  it('writes exactly what JSON.stringify writes, for every event shape (twice: cached shared parts too)', () => {
    for (const r of variants()) {
      const expected = JSON.stringify(encodeDecision(r));
      expect(encodeDecisionJson(r)).toBe(expected);
      expect(encodeDecisionJson(r)).toBe(expected);
      expect(JSON.parse(encodeDecisionJson(r))).toEqual(JSON.parse(expected));
    }
  });

  it('agrees with JSON.stringify on plain values, nested walked members and left-out members', () => {
    const s = shared({ a: 1, b: ['x'] });
    const cases: object[] = [
      {},
      { metadata: {} },
      { metadata: { product: s, uid: 'u', n: 1.5, f: () => 1, u: undefined, sym: Symbol('x') } },
      { unmapped: { palisade: { identity: s, stages: [{ us: 1.25 }], exact: { 'a.b': 1 } } } },
      { unmapped: [1, 2], metadata: null, palisade: 'not walked at top level', d: new Date(0) },
      { metadata: { toJSON: () => 'custom' } },
      Object.assign(Object.create({ inherited: 1 }), { own: 2 }),
      { '1': 'integer-like keys come first', b: 2, '0': 'zero' },
    ];
    for (const c of cases) expect(eventJson(c)).toBe(JSON.stringify(c));
    expect(() => eventJson({ big: 1n })).toThrow(TypeError);
  });

  it('serializes a shared object once: later changes to it (which the contract forbids) do not show', () => {
    const s = shared({ v: 1 });
    expect(eventJson({ x: s })).toBe('{"x":{"v":1}}');
    (s as { v: number }).v = 2;
    expect(eventJson({ x: s })).toBe('{"x":{"v":1}}');
  });
});
