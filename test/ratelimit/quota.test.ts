/**
 * Fleet-wide quotas (rate-limit rules with scope: global) at one sidecar: the policy, the charge
 * each allowed request records for the aggregator, the refusal from the quota store (filled here
 * directly: the Kafka path is test/detector/quota-fleet.test.ts), the fair share near the quota,
 * the end of the window, and the aggregator's counting.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeDecision, encodeDecisionJson } from '../../src/decision/encode.ts';
import { toOcsfHttpActivity } from '../../src/decision/ocsf/http-activity.ts';
import { recordFromOcsf } from '../../src/decision/ocsf/read.ts';
import type { DecisionRecord } from '../../src/decision/record.ts';
import { createLogger } from '../../src/log/logger.ts';
import { compilePolicyText } from '../../src/policy/load.ts';
import { decodeQuotaMessage, encodeQuota, type QuotaRecord } from '../../src/ratelimit/quota-record.ts';
import { quotaStore } from '../../src/ratelimit/quota-store.ts';
import { createServices } from '../../src/sidecar/compose.ts';
import { QuotaCounts } from '../../detectors/quota/counts.ts';
import { send, startHarness, until, type Harness } from '../support/harness.ts';

const A = 'spiffe://test.local/ns/shop/sa/greedy';
const B = 'spiffe://test.local/ns/shop/sa/polite';
const MINUTE = 60_000;

const POLICY = `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: orders, version: "1" }
spec:
  authorization:
    rules:
      - id: open
        paths: [/**]
        public: true
  rateLimits:
    rules:
      - id: fleet
        scope: global
        key: [identity]
        limit: 100
        window: minute
        paths: [/api/**]
      - id: fleet-trial
        scope: global
        key: [identity]
        limit: 10
        window: hour
        paths: [/trial/**]
        audit: true
`;

function over(key: string, until: number, state: 'over' | 'near' = 'over', share = 0): QuotaRecord {
  return { v: 1, workload: 'orders', rule: 'fleet', key, state, until, windowStart: until - MINUTE, limit: 100, count: state === 'over' ? 100 : 90, sidecars: 3, share, at: until - MINUTE / 2 };
}

describe('global quotas at one sidecar', () => {
  let h: Harness;
  // Aligned to a minute, plus 10 s: the window ends 50 s from "now".
  let clock = 1_800_000_000_000 + 10_000;
  const services = createServices(createLogger({ level: 'silent' }), () => clock);
  const windowEnd = 1_800_000_000_000 + MINUTE;
  beforeAll(async () => {
    h = await startHarness(POLICY, { services });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('lets requests through and records the charge the aggregator counts, exactly through OCSF', async () => {
    const a = await h.client(A);
    const r = await send(a, `${h.base}/api/orders`);
    expect(r.status).toBe(200);
    expect(r.headers['ratelimit-policy']).toBe('"fleet";q=100;w=60');
    await until(() => h.decisions.some((d) => d.request.path === '/api/orders'));
    const d = h.decisions.find((x) => x.request.path === '/api/orders') as DecisionRecord;
    expect(d.quotas).toEqual([{ rule: 'fleet', key: A, limit: 100, windowMs: MINUTE }]);
    const event = toOcsfHttpActivity(d);
    expect(event.unmapped.palisade.quotas).toEqual([{ rule: 'fleet', key: A, limit: 100, window_ms: MINUTE }]);
    expect(recordFromOcsf(JSON.parse(JSON.stringify(event)))).toEqual(d);
    // The standard (lean, default) event keeps it too: the aggregator reads it from there.
    expect(decodeDecision(JSON.parse(encodeDecisionJson(d, 'standard'))).quotas).toEqual(d.quotas);
    // A route no quota covers records none (and the event has no quotas member).
    await send(a, `${h.base}/other`);
    await until(() => h.decisions.some((x) => x.request.path === '/other'));
    const other = h.decisions.find((x) => x.request.path === '/other') as DecisionRecord;
    expect(other.quotas).toBeUndefined();
    expect('quotas' in toOcsfHttpActivity(other).unmapped.palisade).toBe(false);
  });

  it('refuses a key over quota until the window ends, with Retry-After; another key is unaffected', async () => {
    quotaStore(services).apply(over(A, windowEnd), clock);
    const a = await h.client(A);
    const b = await h.client(B);
    const ra = await send(a, `${h.base}/api/orders`);
    expect(ra.status).toBe(429);
    expect(ra.json).toMatchObject({ code: 'QUOTA_EXCEEDED', status: 429, detail: 'retry after the number of seconds in Retry-After' });
    // Nothing of the policy's numbers or of the fleet's state in the body.
    expect(JSON.stringify(ra.json)).not.toMatch(/fleet|100|share|sidecar/);
    expect(ra.headers['retry-after']).toBe('50');
    expect(ra.headers['ratelimit']).toBe('"fleet";r=0;t=50');
    expect(ra.headers['ratelimit-policy']).toBe('"fleet";q=100;w=60');
    expect((await send(b, `${h.base}/api/orders`)).status).toBe(200);
    await until(() => h.decisions.some((d) => d.code === 'QUOTA_EXCEEDED'));
    const refused = h.decisions.find((d) => d.code === 'QUOTA_EXCEEDED') as DecisionRecord;
    expect(refused).toMatchObject({ verdict: 'deny', decidedBy: 'ratelimit', rule: 'fleet', response: { status: 429 } });
    expect(refused.detail).toMatch(/global quota "fleet" \(100 per 60 s\) is used up across the fleet/);
    // A refused request is not counted again.
    expect(refused.quotas).toBeUndefined();

    clock = windowEnd + 1;
    expect((await send(a, `${h.base}/api/orders`)).status).toBe(200);
  });

  it('near the quota, lets through only this sidecar\'s share, then refuses', async () => {
    const end = Math.floor(clock / MINUTE) * MINUTE + MINUTE;
    quotaStore(services).apply(over(B, end, 'near', 2), clock);
    const b = await h.client(B);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await send(b, `${h.base}/api/orders`)).status);
    expect(statuses).toEqual([200, 200, 429, 429]);
    await until(() => h.decisions.filter((d) => d.code === 'QUOTA_EXCEEDED' && d.identity?.subject === B).length === 2);
    expect(h.decisions.find((d) => d.code === 'QUOTA_EXCEEDED' && d.identity?.subject === B)?.detail).toMatch(/reached this sidecar's share/);
    // A later "near" of the same window does not hand the share out again.
    quotaStore(services).apply(over(B, end, 'near', 2), clock);
    expect((await send(b, `${h.base}/api/orders`)).status).toBe(429);
  });

  it('an audit quota records would_deny and lets the request through', async () => {
    const end = Math.floor(clock / (60 * MINUTE)) * 60 * MINUTE + 60 * MINUTE;
    quotaStore(services).apply({ ...over(A, end), rule: 'fleet-trial', limit: 10 }, clock);
    const a = await h.client(A);
    const r = await send(a, `${h.base}/trial/1`);
    expect(r.status).toBe(200);
    await until(() => h.decisions.some((d) => d.request.path === '/trial/1'));
    const d = h.decisions.find((x) => x.request.path === '/trial/1') as DecisionRecord;
    expect(d.wouldDeny).toEqual([{ stage: 'ratelimit', code: 'QUOTA_EXCEEDED', rule: 'fleet-trial' }]);
    expect(d.quotas).toEqual([{ rule: 'fleet-trial', key: A, limit: 10, windowMs: 60 * MINUTE }]);
  });
});

describe('quota rules in the policy', () => {
  const services = createServices(createLogger({ level: 'silent' }));
  const policy = (rule: string) => `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: orders, version: "1" }
spec:
  authorization: { rules: [{ id: open, paths: [/**], public: true }] }
  rateLimits:
    rules:
      - ${rule}
`;
  const compile = async (text: string) => compilePolicyText(text, '/p.yaml', services);
  it('refuses a global rule without a limit or window, or with a rate, naming the field and the fix', async () => {
    await expect(compile(policy('{ id: q, scope: global, key: [identity], window: minute }'))).rejects.toThrow(/missing required field "limit"/);
    await expect(compile(policy('{ id: q, scope: global, key: [identity], limit: 5, window: week }'))).rejects.toThrow(/window.*must be one of "second", "minute", "hour", "day"/);
    await expect(compile(policy('{ id: q, scope: global, key: [identity], limit: 5, window: minute, rate: 3 }'))).rejects.toThrow(/remove rate\/burst/);
    await expect(compile(policy('{ id: q, key: [identity], rate: 3, limit: 5 }'))).rejects.toThrow(/limit and window are for scope: global/);
  });

  it('keys a quota by a token claim; explain shows the rule and what beyond it does', async () => {
    const c = await compile(policy('{ id: per-tenant, scope: global, key: ["claim:tenant"], limit: 1000, window: day }'));
    const stage = c.stages.find((s) => s.name === 'ratelimit');
    const ex = stage?.explain?.({ method: 'GET', path: '/x', host: 'h', clientIp: '192.0.2.1', identity: null });
    expect(ex?.trace).toEqual([`quota "per-tenant" applies: global quota: 1000 per day across all sidecars of "orders", keyed by claim:tenant; beyond it: 429 QUOTA_EXCEEDED with Retry-After until the window ends`]);
  });
});

describe('the aggregator\'s counts', () => {
  const base = 1_800_000_000_000;
  function decision(key: string, time: number, server = '10.0.0.1'): DecisionRecord {
    return { quotas: [{ rule: 'fleet', key, limit: 10, windowMs: MINUTE }], policy: { name: 'orders', version: '1', hash: 'h' }, server: { ip: server, port: 8443 }, time } as unknown as DecisionRecord;
  }
  it('publishes near (with a fair share per sidecar) then over, once per window, and ends them after it', () => {
    const counts = new QuotaCounts();
    const out: QuotaRecord[] = [];
    for (let i = 0; i < 12; i++) out.push(...counts.add(decision('t1', base + 1000 + i, `10.0.0.${(i % 2) + 1}`), base + 1000 + i));
    expect(out.map((r) => [r.state, r.count, r.sidecars])).toEqual([
      ['near', 9, 2],
      ['over', 10, 2],
    ]);
    // One left, two sidecars: no share for anyone (never more than what is left).
    expect(out[0]?.share).toBe(0);
    expect(out[1]).toMatchObject({ workload: 'orders', rule: 'fleet', key: 't1', until: base + MINUTE, windowStart: base, limit: 10 });
    // Another key is counted apart; the next window starts from zero.
    expect(counts.add(decision('t2', base + 2000), base + 2000)).toEqual([]);
    expect(counts.add(decision('t1', base + MINUTE + 5), base + MINUTE + 5)).toEqual([]);
    // The window that went over was replaced by the next one; neither key is near or over now.
    expect(counts.sweep(base + 2 * MINUTE)).toEqual({ quotas: [], counts: [] });
    const c2 = new QuotaCounts({ fairShare: false });
    const o2: QuotaRecord[] = [];
    for (let i = 0; i < 10; i++) o2.push(...c2.add(decision('t1', base + i), base + i));
    expect(o2.map((r) => r.state)).toEqual(['over']);
    expect(c2.sweep(base + MINUTE)).toEqual({ quotas: [{ workload: 'orders', rule: 'fleet', key: 't1' }], counts: [] });
  });

  it('round-trips records and tombstones through the topic encoding', () => {
    const r = over('tenant-7', base + MINUTE);
    const m = encodeQuota(r);
    expect(decodeQuotaMessage({ key: Buffer.from(m.key), value: Buffer.from(m.value) })).toEqual({ type: 'quota', record: r });
    expect(decodeQuotaMessage({ key: Buffer.from(m.key), value: null })).toEqual({ type: 'end', workload: 'orders', rule: 'fleet', key: 'tenant-7' });
    expect(decodeQuotaMessage({ key: Buffer.from('nope'), value: null }).type).toBe('invalid');
  });
});
