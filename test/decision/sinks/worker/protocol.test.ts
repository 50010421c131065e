import { describe, expect, it } from 'vitest';
import type { DecisionRecord } from '../../../../src/decision/record.ts';
import { fromWireLine, wireLine } from '../../../../src/decision/sinks/worker/protocol.ts';
import { benchAllowRecord, jwtAllowRecord, SYNTHETIC } from '../../ocsf/records.ts';

/** Sends `r` through the wire format with its three shared objects as references 1, 2, 3. */
function roundTrip(r: DecisionRecord): DecisionRecord {
  const shared = new Map<number, object | null>([[1, r.identity], [2, r.tls], [3, r.policy]]);
  const line = wireLine(r, r.identity ? 1 : null, r.tls ? 2 : null, r.policy ? 3 : null);
  expect(line).not.toContain('\n');
  return fromWireLine(line, (ref) => (ref === null ? null : (shared.get(ref) ?? null)));
}

describe('the record wire format between the request thread and the decision thread', () => {
  const cases: [string, () => DecisionRecord][] = [
    ...SYNTHETIC,
    ['the benchmark request', () => benchAllowRecord(3)],
    ['several would-denies and quota charges', () => jwtAllowRecord({
      wouldDeny: [{ stage: 'ratelimit', code: 'RATE_LIMITED', rule: 'per-client' }, { stage: 'authz', code: 'AUTHZ_DENY_RULE', rule: null }],
      quotas: [{ rule: 'tenant-day', key: 'claim:tenant=t-17', limit: 1000, windowMs: 86_400_000 }],
      request: { ...jwtAllowRecord().request, params: { id: 'a"b\n\u2028' }, userAgent: 'x\u0000y' },
    })],
  ];
  it.each(cases)('gives back the same record, property for property and in the same order: %s', (_name, make) => {
    const r = make();
    const back = roundTrip(r);
    expect(back).toStrictEqual(r);
    expect(JSON.stringify(back)).toBe(JSON.stringify(r));
    // The shared objects are the ones looked up, not copies (the thread's per-object caches key on them).
    expect(back.identity).toBe(r.identity);
    expect(back.tls).toBe(r.tls);
    expect(back.policy).toBe(r.policy);
  });

  it('is an array of fields, not an object: about half the bytes of the record as JSON', () => {
    const r = benchAllowRecord(0);
    const line = wireLine(r, 1, 2, 3);
    expect(Array.isArray(JSON.parse(line))).toBe(true);
    expect(line.length).toBeLessThan(JSON.stringify({ ...r, identity: 1, tls: 2, policy: 3 }).length * 0.6);
  });
});
