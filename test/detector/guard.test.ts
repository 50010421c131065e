// The blast-radius guard, the caps on automatic blocks and failures told apart, on the detector
// core with seeded simulated traffic (simulated time, no network): a policy mistake or an issuer
// incident that fails every client blocks none of them and raises one guard alert, while a flood
// in the same minutes is still blocked; the guard lets go by itself; caps turn blocks beyond them
// into alerts that say so; a 403 of a valid identity is no credential stuffing.
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { encodeAlert } from '../../detectors/alerts/ocsf.ts';
import { parseDetectorConfig, type DetectorConfigInput } from '../../detectors/config.ts';
import { Detector, POPULATION_CLIENT, type Alert } from '../../detectors/detector.ts';
import { createDetectorMetrics } from '../../detectors/metrics.ts';
import { recordOf } from '../../detectors/sim/records.ts';
import { generateTraffic, type AttackSpec, type SimClient } from '../../detectors/sim/traffic.ts';
import { alertLine } from '../../src/cli/commands/alerts.ts';
import type { DecisionRecord } from '../../src/decision/record.ts';
import { validateOcsf } from '../../src/decision/ocsf/validate.ts';
import type { Code } from '../../src/errors/codes.ts';
import { uuidv7 } from '../../src/util/ids.ts';

const BASE = Date.parse('2026-03-01T00:00:00Z');
const MIN = 60_000;

/** A record turned into what a sidecar writes when it answers `code` (deny) under policy `hash`. */
function deniedAs(r: DecisionRecord, code: Code, status: number, hash: string): DecisionRecord {
  return { ...r, verdict: 'deny', code, decidedBy: code.startsWith('AUTHZ_') ? 'authz' : 'authn', response: { status, bytesOut: 90 }, upstreamMs: null, policy: { name: 'sim', version: '2', hash } };
}

interface Run {
  readonly alerts: Alert[];
  readonly det: Detector;
  readonly registry: Registry;
  readonly clients: readonly SimClient[];
  readonly keyOf: (c: SimClient) => string;
}

/**
 * Feeds seeded traffic through a Detector in simulated time; `rewrite` may change each record
 * (the incident), by its time offset and client.
 */
function run(o: { seed: number; minutes: number; benign: number; attacks?: AttackSpec[]; config?: DetectorConfigInput; rewrite?: (r: DecisionRecord, t: number, c: SimClient) => DecisionRecord }): Run {
  const attacks = o.attacks ?? [];
  const traffic = generateTraffic({ seed: o.seed, durationMs: o.minutes * MIN, benign: o.benign, attacks });
  const anonymous = (c: SimClient) => c.attack !== null && !attacks[c.index - o.benign]?.warmAs;
  const registry = new Registry();
  const config = parseDetectorConfig(o.config ?? {});
  let now = BASE;
  const alerts: Alert[] = [];
  const det = new Detector({ config, now: () => now, metrics: createDetectorMetrics(registry, { processMetrics: false }), outputs: { alert: (a) => alerts.push(a), block: () => undefined } });
  for (const q of traffic.requests) {
    const c = traffic.clients[q.client]!;
    let r = recordOf(q, c, BASE, anonymous(c));
    if (o.rewrite) r = o.rewrite(r, q.t, c);
    now = r.time;
    det.observe(r);
  }
  return { alerts, det, registry, clients: traffic.clients, keyOf: (c) => (anonymous(c) ? c.ip : c.spiffeId) };
}

async function metric(registry: Registry, sample: string): Promise<number> {
  const line = (await registry.metrics()).split('\n').find((l) => l.startsWith(sample + ' '));
  return line === undefined ? NaN : Number(line.slice(sample.length + 1));
}

const blockedKeys = (alerts: readonly Alert[]) => new Set(alerts.filter((a) => a.action === 'block').map((a) => a.anomaly.client.key));
const guardAlerts = (alerts: readonly Alert[]) => alerts.filter((a) => a.anomaly.detection === 'guard.blast-radius');

describe('blast-radius guard', () => {
  it('a policy that denies every client (403) blocks none of them, raises one guard alert, and a flood in the same minutes is still blocked', async () => {
    const { alerts, registry, clients, keyOf } = run({
      seed: 71,
      minutes: 9,
      benign: 20,
      attacks: [{ kind: 'flood', start: 5 * MIN, durationMs: 40_000, warmAs: 'steady' }],
      // From minute 3 a new policy (hash "b4d...") denies every request: roles that match no token's scope.
      rewrite: (r, t) => (t >= 3 * MIN ? deniedAs(r, 'AUTHZ_NO_MATCHING_RULE', 403, 'b4d0000000000000000000000000000000000000000000000000000000000001') : r),
    });
    const benign = clients.filter((c) => c.attack === null);
    const flood = clients.find((c) => c.attack === 'flood')!;
    const blocked = blockedKeys(alerts);
    expect(benign.filter((c) => blocked.has(keyOf(c))).map((c) => c.name)).toEqual([]);
    expect(blocked.has(keyOf(flood))).toBe(true);
    const g = guardAlerts(alerts);
    expect(g).toHaveLength(1);
    const s = g[0]!.anomaly.summary;
    // It holds as soon as a few clients fail with the same code right after the policy changed.
    expect(s).toMatch(/blast-radius guard: \d+ of \d+ active clients \([\d.]+%\) are failing in the last [\d.]+ s; \d+ of them last failed with AUTHZ_NO_MATCHING_RULE/);
    expect(s).toContain('AUTHZ_NO_MATCHING_RULE');
    expect(s).toContain('policy hash b4d0000000000000, new');
    expect(g[0]!.anomaly.client.key).toBe(POPULATION_CLIENT);
    expect(g[0]!.action).toBe('alert');
    // The guard alert is a schema-valid Detection Finding, and alerts tail prints it.
    expect(validateOcsf('detection-finding', encodeAlert(g[0]!)).errors).toEqual([]);
    expect(alertLine(encodeAlert(g[0]!))).toContain('guard.blast-radius');
    expect(await metric(registry, 'palisade_detector_guard_active')).toBe(1);
  });

  it('an issuer incident (every token expired: clock skew) suspends auth blocks, counts and shows each suppressed block, then lets go by itself', async () => {
    const { alerts, registry, clients, keyOf } = run({
      seed: 72,
      minutes: 12,
      benign: 24,
      // Minutes 3-5: every token refused as expired. Minute 9: one client stuffs credentials.
      attacks: [{ kind: 'stuffing', start: 9 * MIN, durationMs: 60_000, warmAs: 'steady' }],
      rewrite: (r, t, c) => (t >= 3 * MIN && t < 5 * MIN && c.attack === null ? deniedAs(r, 'AUTHN_TOKEN_EXPIRED', 401, 'sim') : r),
    });
    const benign = clients.filter((c) => c.attack === null);
    const blocked = blockedKeys(alerts);
    expect(benign.filter((c) => blocked.has(keyOf(c))).map((c) => c.name)).toEqual([]);
    const suppressed = alerts.filter((a) => a.suppressed === 'guard');
    // Without the guard these would have been blocks: auth.failures fired for the failing clients.
    expect(suppressed.length).toBeGreaterThanOrEqual(10);
    for (const a of suppressed) expect(['auth.failures', 'auth.slow', 'population.auth-failures']).toContain(a.anomaly.detection);
    expect(await metric(registry, 'palisade_detector_blocks_suppressed_total{reason="guard"}')).toBe(suppressed.length);
    expect(alertLine(encodeAlert(suppressed[0]!))).toContain('alert (block suppressed: guard)');
    expect(guardAlerts(alerts)).toHaveLength(1);
    expect(guardAlerts(alerts)[0]!.anomaly.summary).toContain('AUTHN_TOKEN_EXPIRED');
    // Released once the population recovered: the stuffing run at minute 9 is blocked.
    expect(await metric(registry, 'palisade_detector_guard_active')).toBe(0);
    const stuffer = clients.find((c) => c.attack === 'stuffing')!;
    expect(blocked.has(keyOf(stuffer))).toBe(true);
  });

  it('one attacker among many clients is not an incident: the guard stays out of the way', () => {
    const { alerts, clients, keyOf } = run({ seed: 73, minutes: 8, benign: 30, attacks: [{ kind: 'stuffing', start: 4 * MIN, durationMs: 60_000, warmAs: 'steady' }] });
    expect(guardAlerts(alerts)).toHaveLength(0);
    expect(blockedKeys(alerts).has(keyOf(clients.find((c) => c.attack)!))).toBe(true);
  });
});

describe('failures told apart', () => {
  it('a valid identity the policy denies (403) is no credential stuffer; the same volume of 401s is; 403s on many paths are enumeration.forbidden', () => {
    const config = parseDetectorConfig({ guard: { enabled: false } });
    let now = BASE;
    const alerts: Alert[] = [];
    const det = new Detector({ config, now: () => now, outputs: { alert: (a) => alerts.push(a), block: () => undefined } });
    const base = recordOf({ t: 0, client: 0, method: 'GET', path: '/orders/1', route: '/orders/{id}', outcome: 'ok', bytesIn: 0, attack: false }, { index: 0, name: 'x', profile: 'steady', attack: null, attackStart: 0, attackEnd: 0, ip: '127.10.0.9', spiffeId: 'spiffe://sim/x' }, BASE, false);
    const client = (name: string, ip: string) => ({ ...base, client: { ...base.client, ip }, identity: { ...base.identity!, subject: `spiffe://sim/${name}`, spiffeId: `spiffe://sim/${name}` } });
    const send = (r: DecisionRecord, t: number, path: string, code: Code | null, status: number) => {
      now = BASE + t;
      const rec = { ...r, id: uuidv7(now), time: now, request: { ...r.request, path } };
      det.observe(code === null ? { ...rec, response: { status, bytesOut: 10 } } : { ...rec, verdict: 'deny', code, response: { status, bytesOut: 10 } });
    };
    const denied = client('denied', '127.10.0.10');
    const unauth = client('unauth', '127.10.0.11');
    const walker = client('walker', '127.10.0.12');
    // A minute of normal traffic each, then two minutes of failures at 5 per second.
    for (let t = 0; t < 60_000; t += 1000) for (const c of [denied, unauth, walker]) send(c, t, '/orders/1', null, 200);
    for (let t = 60_000, i = 0; t < 180_000; t += 200, i++) {
      send(denied, t, `/orders/${i % 3}`, 'AUTHZ_NO_MATCHING_RULE', 403);
      send(unauth, t, `/orders/${i % 3}`, 'AUTHN_TOKEN_INVALID', 401);
      send(walker, t + 1, `/orders/${1000 + i}`, 'AUTHZ_NO_MATCHING_RULE', 403);
    }
    const by = (c: DecisionRecord) => new Set(alerts.filter((a) => a.anomaly.client.key === c.identity!.subject).map((a) => a.anomaly.detection));
    expect([...by(denied)]).toEqual([]);
    expect(by(unauth).has('auth.failures')).toBe(true);
    expect(by(walker).has('enumeration.forbidden')).toBe(true);
    expect([...by(walker)].filter((d) => d.startsWith('auth.'))).toEqual([]);
    const w = alerts.find((a) => a.anomaly.detection === 'enumeration.forbidden' && a.action === 'block')!;
    expect(w).toBeDefined();
    expect(w.anomaly.summary).toMatch(/authorization denials .* distinct paths/);
  });
});

describe('caps on automatic blocks', () => {
  /** `n` new clients (by IP) flooding at 200 requests/s for 3 s, all starting at the same time, among seeded benign traffic. */
  function burst(n: number, guard: DetectorConfigInput['guard'], waves: readonly number[] = [2 * MIN]) {
    const traffic = generateTraffic({ seed: 74, durationMs: 6 * MIN, benign: 20 });
    const records: DecisionRecord[] = traffic.requests.map((q) => recordOf(q, traffic.clients[q.client]!, BASE, false));
    const template = records[0]!;
    waves.forEach((at, w) => {
      const start = BASE + at;
      for (let t = 0; t < 3000; t += 5) {
        for (let i = 0; i < n; i++) {
          const time = start + t + (i % 5);
          records.push({ ...template, id: uuidv7(time), time, identity: null, client: { ...template.client, ip: `10.${66 + w}.${i >> 8}.${i & 255}` } });
        }
      }
    });
    records.sort((a, b) => a.time - b.time);
    let now = BASE;
    const alerts: Alert[] = [];
    const registry = new Registry();
    const det = new Detector({ config: parseDetectorConfig({ guard }), now: () => now, metrics: createDetectorMetrics(registry, { processMetrics: false }), outputs: { alert: (a) => alerts.push(a), block: () => undefined } });
    for (const r of records) {
      now = r.time;
      det.observe(r);
    }
    const attackers = new Set(records.filter((r) => r.client.ip.startsWith('10.')).map((r) => r.client.ip));
    return { alerts, registry, attackers };
  }

  it('a burst of 200 distinct attackers yields at most the capped blocks per minute and alerts for the rest', async () => {
    const { alerts, registry, attackers } = burst(200, { maxBlocksPerMinute: 25, maxBlockedShare: 1 });
    expect(attackers.size).toBe(200);
    const blocked = blockedKeys(alerts);
    expect(blocked.size).toBe(25);
    const capped = new Set(alerts.filter((a) => a.suppressed === 'block-rate-cap').map((a) => a.anomaly.client.key));
    // Every attacker was either blocked or alerted with the cap as the reason.
    for (const ip of attackers) expect(blocked.has(ip) || capped.has(ip), ip).toBe(true);
    // 175 never blocked; the blocked ones were capped too when they rose to critical (a longer block).
    expect([...capped].filter((k) => !blocked.has(k))).toHaveLength(175);
    const capAlerts = alerts.filter((a) => a.anomaly.detection === 'guard.block-cap');
    expect(capAlerts).toHaveLength(1);
    expect(capAlerts[0]!.anomaly.summary).toContain('25 automatic blocks in the last 60 s');
    expect(await metric(registry, 'palisade_detector_blocks_suppressed_total{reason="block-rate-cap"}')).toBe(alerts.filter((a) => a.suppressed === 'block-rate-cap').length);
    expect(await metric(registry, 'palisade_detector_blocks_issued_total{detection="rate.burst"}')).toBe(25);
  });

  it('caps the share of active clients under a block at once', () => {
    const { alerts, attackers } = burst(60, { maxBlocksPerMinute: 1000, maxBlockedShare: 0.25 });
    const blocked = blockedKeys(alerts);
    // About 80 active clients (20 benign, 60 attackers): at most a quarter of them blocked at once.
    expect(blocked.size).toBeLessThanOrEqual(20);
    expect(blocked.size).toBeGreaterThanOrEqual(15);
    expect(alerts.filter((a) => a.anomaly.detection === 'guard.block-cap')[0]?.anomaly.summary).toMatch(/block cap reached: \d+ of \d+ active clients are under a block .*guard\.maxBlockedShare 25%/);
    const capped = new Set(alerts.filter((a) => a.suppressed === 'blocked-share-cap').map((a) => a.anomaly.client.key));
    for (const ip of attackers) expect(blocked.has(ip) || capped.has(ip), ip).toBe(true);
  });

  it('blocked clients that went away do not use the share cap up: a second wave minutes later is blocked too', () => {
    // 20 benign clients, a cap of a quarter: 6 attackers at minute 2 (blocked, then gone), 6 more at minute 4.
    const { alerts, attackers } = burst(6, { maxBlocksPerMinute: 1000, maxBlockedShare: 0.25 }, [2 * MIN, 4 * MIN]);
    expect(attackers.size).toBe(12);
    const blocked = blockedKeys(alerts);
    for (const ip of attackers) expect(blocked.has(ip), ip).toBe(true);
    expect(alerts.filter((a) => a.suppressed === 'blocked-share-cap')).toEqual([]);
  });
});
