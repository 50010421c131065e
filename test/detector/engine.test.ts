// The engine on seeded simulated traffic (no network, simulated time): every attack kind is caught,
// no benign client is blocked, anomalies explain themselves; and its building blocks.
import { describe, expect, it } from 'vitest';
import { parseDetectorConfig } from '../../detectors/config.ts';
import { Detector, type Alert } from '../../detectors/detector.ts';
import { Ewma, SecondSeries, alphaForHalfLife } from '../../detectors/engine/baseline.ts';
import { ClientState } from '../../detectors/engine/client-state.ts';
import { DetectorEngine } from '../../detectors/engine/engine.ts';
import { hash32 } from '../../detectors/engine/hash.ts';
import { HLL_REGISTERS, hllAdd, hllEstimate } from '../../detectors/engine/hll.ts';
import { SlidingWindow } from '../../detectors/engine/window.ts';
import { blockTargetOf } from '../../detectors/feedback/policy.ts';
import { recordOf } from '../../detectors/sim/records.ts';
import { ATTACKS, generateTraffic, type AttackSpec, type SimClient } from '../../detectors/sim/traffic.ts';
import { decodeDecision, encodeDecision } from '../../src/decision/encode.ts';

const BASE = Date.parse('2026-03-01T00:00:00Z');

function run(seed: number, minutes: number, benign: number, attacks: AttackSpec[], config = parseDetectorConfig({})) {
  const traffic = generateTraffic({ seed, durationMs: minutes * 60_000, benign, attacks });
  const anonymous = (c: SimClient) => c.attack !== null && !attacks[c.index - benign]?.warmAs;
  let now = BASE;
  const alerts: Alert[] = [];
  const det = new Detector({ config, now: () => now, outputs: { alert: (a) => alerts.push(a), block: () => undefined } });
  for (const q of traffic.requests) {
    const c = traffic.clients[q.client]!;
    const r = recordOf(q, c, BASE, anonymous(c));
    now = r.time;
    det.observe(r);
  }
  const keyOf = (c: SimClient) => (anonymous(c) ? c.ip : c.spiffeId);
  return { traffic, alerts, det, keyOf };
}

describe('detection engine on seeded traffic', () => {
  it('blocks every fast attack kind, new or known client, and no benign client', () => {
    const attacks: AttackSpec[] = [];
    ATTACKS.filter((k) => k !== 'slow-stuffing').forEach((kind, i) => {
      attacks.push({ kind, start: 6 * 60_000 + i * 20_000, durationMs: 90_000, warmAs: 'steady' });
      if (kind !== 'scraping' && kind !== 'probing') attacks.push({ kind, start: 7 * 60_000 + i * 20_000, durationMs: 90_000 });
    });
    const { traffic, alerts, keyOf } = run(42, 12, 120, attacks);
    const blocked = new Map<string, Alert>();
    for (const a of alerts) if (a.action === 'block' && !blocked.has(a.anomaly.client.key)) blocked.set(a.anomaly.client.key, a);
    for (const c of traffic.clients) {
      const a = blocked.get(keyOf(c));
      if (c.attack) {
        expect(a, `${c.name} blocked`).toBeDefined();
        expect(a!.anomaly.time).toBeGreaterThanOrEqual(BASE + c.attackStart);
      } else {
        expect(a, `${c.name} (benign) not blocked`).toBeUndefined();
      }
    }
  });

  it('catches a slow credential-stuffing run spread over minutes', () => {
    const { traffic, alerts, keyOf } = run(43, 25, 60, [{ kind: 'slow-stuffing', start: 5 * 60_000, durationMs: 15 * 60_000, rate: 0.2 }]);
    const attacker = traffic.clients.find((c) => c.attack)!;
    const a = alerts.find((x) => x.action === 'block' && x.anomaly.client.key === keyOf(attacker));
    expect(a?.anomaly.detection).toBe('auth.slow');
    expect(a?.anomaly.window.seconds).toBe(900);
    expect(a?.block?.target).toEqual({ kind: 'ip', value: attacker.ip });
  });

  it('explains each anomaly: metric, baseline, observed, window, threshold', () => {
    const { alerts } = run(44, 8, 40, [{ kind: 'flood', start: 5 * 60_000, durationMs: 30_000, warmAs: 'steady' }]);
    const a = alerts.find((x) => x.anomaly.detection === 'rate.burst')!.anomaly;
    expect(a.metric).toBe('requests_per_second');
    expect(a.baseline.source).toBe('client');
    expect(a.baseline.samples).toBeGreaterThan(60);
    expect(a.window.seconds).toBe(1);
    expect(a.window.end - a.window.start).toBe(1000);
    expect(a.observed).toBeGreaterThanOrEqual(a.threshold);
    expect(a.score).toBeCloseTo(a.observed / a.threshold, 10);
    expect(a.thresholdRule).toMatch(/^max\(floor 30, 4 × mean/);
    expect(a.summary).toMatch(/requests\/s over the last 1 s against this client's usual/);
  });

  it('does not re-alert the same detection within the cooldown unless the severity rises', () => {
    const { alerts } = run(45, 8, 20, [{ kind: 'flood', start: 5 * 60_000, durationMs: 60_000, warmAs: 'steady' }]);
    const burst = alerts.filter((a) => a.anomaly.detection === 'rate.burst');
    const ranks = burst.map((a) => ['low', 'medium', 'high', 'critical'].indexOf(a.anomaly.severity));
    expect(ranks.length).toBeGreaterThan(0);
    for (let i = 1; i < ranks.length; i++) expect(ranks[i]!).toBeGreaterThan(ranks[i - 1]!);
  });

  it('judges decoded OCSF events exactly like the records they came from', () => {
    const traffic = generateTraffic({ seed: 46, durationMs: 60_000, benign: 10, attacks: [{ kind: 'enumeration', start: 20_000, durationMs: 30_000 }] });
    const direct = new DetectorEngine(parseDetectorConfig({}));
    const wire = new DetectorEngine(parseDetectorConfig({}));
    let a = 0;
    let b = 0;
    for (const q of traffic.requests) {
      const r = recordOf(q, traffic.clients[q.client]!, BASE, false);
      a += direct.observe(r)?.length ?? 0;
      b += wire.observe(decodeDecision(JSON.parse(JSON.stringify(encodeDecision(r)))))?.length ?? 0;
    }
    expect(a).toBeGreaterThan(0);
    expect(b).toBe(a);
  });
});

describe('engine building blocks', () => {
  it('sliding window: buckets expire one at a time; totals stay exact', () => {
    const w = new SlidingWindow(1000, 10, 2);
    for (let t = 0; t < 1000; t += 10) w.add(t, 0, 1);
    expect(w.total(0)).toBe(100);
    w.advance(1050); // the bucket [0, 100) expired
    expect(w.total(0)).toBe(90);
    w.add(500, 1, 3); // late, still inside
    expect(w.total(1)).toBe(3);
    w.advance(5000);
    expect(w.total(0)).toBe(0);
    expect(w.total(1)).toBe(0);
  });

  it('per-second series: idle seconds fold in closed form exactly like one at a time', () => {
    const alpha = alphaForHalfLife(50);
    const a = new SecondSeries(1);
    const b = new SecondSeries(1);
    const seconds = [0, 1, 2, 5, 90, 91, 500, 2000, 2001, 2300];
    for (const s of seconds) {
      a.tick(s * 1000, alpha, 0, 0);
      a.add(0, 3);
    }
    // b: the same with every idle second ticked explicitly
    let next = 0;
    for (let s = 0; s <= 2300; s++) {
      b.tick(s * 1000, alpha, 0, 0);
      if (s === seconds[next]) {
        b.add(0, 3);
        next++;
      }
    }
    expect(a.n).toBe(b.n);
    expect(a.mean[0]).toBeCloseTo(b.mean[0]!, 9);
    expect(a.variance[0]).toBeCloseTo(b.variance[0]!, 9);
  });

  it('a learned baseline is clamped: an attack does not become the new normal', () => {
    const alpha = alphaForHalfLife(60);
    const clamped = new SecondSeries(2, [1, 0]);
    const free = new SecondSeries(2, [1, 0]);
    for (const [s, clampSigma] of [[clamped, 4], [free, 0]] as const) {
      for (let i = 0; i < 120; i++) {
        s.tick(i * 1000, alpha, clampSigma, 30);
        s.add(0, 2);
      }
      // One half-life of an attack at 250 times the usual rate, with failures from a client that never failed.
      for (let i = 120; i < 180; i++) {
        s.tick(i * 1000, alpha, clampSigma, 30);
        s.add(0, 500);
        s.add(1, 10);
      }
      s.tick(181_000, alpha, clampSigma, 30);
    }
    // Unclamped, half the attack is the new normal; clamped, the baseline may only grow at the client's own pace.
    expect(free.mean[0]!).toBeGreaterThan(200);
    expect(clamped.mean[0]!).toBeLessThan(free.mean[0]! / 5);
    expect(clamped.mean[1]).toBe(0);
  });

  it('HyperLogLog estimates distinct paths within its error', () => {
    const regs = new Uint8Array(HLL_REGISTERS);
    for (const n of [10, 100, 1000, 10_000]) {
      regs.fill(0);
      for (let i = 0; i < n; i++) hllAdd(regs, 0, hash32(`/orders/${i}`));
      // 64 registers: about 13% standard error; allow 3 sigma.
      expect(Math.abs(hllEstimate(regs, [0]) - n) / n).toBeLessThan(0.4);
    }
  });

  it('EWMA starts as a cumulative average, then weighs recent samples', () => {
    const e = new Ewma();
    for (const x of [10, 20, 30]) e.add(x, 0.01);
    expect(e.mean).toBeCloseTo(20, 9);
  });

  it('client state survives a checkpoint round trip', () => {
    const cfg = parseDetectorConfig({});
    const engine = new DetectorEngine(cfg);
    const traffic = generateTraffic({ seed: 47, durationMs: 120_000, benign: 3 });
    for (const q of traffic.requests) engine.observe(recordOf(q, traffic.clients[q.client]!, BASE, false), 2);
    for (const c of engine.clients.values()) {
      const copy = ClientState.fromJSON(JSON.parse(JSON.stringify(c.toJSON())), 2, cfg);
      expect(JSON.stringify(copy.toJSON())).toBe(JSON.stringify(c.toJSON()));
    }
  });

  it('blocks an mTLS client by SPIFFE ID (checked before authn), an authenticated one by subject, others by IP', () => {
    expect(blockTargetOf({ key: 'spiffe://td/a', kind: 'identity', ip: '10.0.0.1', subject: 'spiffe://td/a', spiffeId: 'spiffe://td/a', tokenId: null })).toEqual({ kind: 'spiffeId', value: 'spiffe://td/a' });
    expect(blockTargetOf({ key: 'alice', kind: 'identity', ip: '10.0.0.1', subject: 'alice', spiffeId: 'spiffe://td/a', tokenId: null })).toEqual({ kind: 'subject', value: 'alice' });
    expect(blockTargetOf({ key: '10.0.0.9', kind: 'ip', ip: '10.0.0.9', subject: null, spiffeId: null, tokenId: null })).toEqual({ kind: 'ip', value: '10.0.0.9' });
  });
});
