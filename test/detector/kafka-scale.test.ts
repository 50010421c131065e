// Detector instances on the real broker: a restarted detector restores its baselines from the
// compacted state topic (and judges a known client at once, without a new warm-up); two instances
// in one group share the decisions partitions and every client is still watched by exactly one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KafkaDetector } from '../../detectors/kafka/service.ts';
import { generateTraffic, type SimClient } from '../../detectors/sim/traffic.ts';
import type { Harness } from '../support/harness.ts';
import { TEST_CONFIG } from './support/config.ts';
import { createWorld, eventually, type World } from './support/kafka-env.ts';
import { closeClients, liveClients, replay, useSimApi, type LiveClient, type Sent } from './support/live.ts';

// Long warm-up: a client is only judged by its own baseline after 8 s, so a detector that forgot
// (no restore) could not flag the burst below by rate.burst in time.
const CONFIG = { ...TEST_CONFIG, engine: { warmupEvents: 10, warmupSeconds: 8 } };
// Only the client's own baseline may decide in the restart test (the population needs no history).
const OWN_BASELINE_ONLY = {
  ...CONFIG,
  detections: Object.fromEntries(['population.requests', 'population.auth-failures', 'population.not-found', 'population.violations'].map((id) => [id, { enabled: false }])),
};

describe('detector instances over Kafka', () => {
  let world: World;
  let h: Harness;
  const clients: LiveClient[] = [];
  beforeAll(async () => {
    world = createWorld('scale');
    // The first detector creates the topics before the sidecar publishes.
    const first = await world.detector(CONFIG);
    await first.close();
    h = await world.sidecar();
    useSimApi(h.upstream);
  });
  afterAll(async () => {
    await closeClients(clients);
    await world?.close();
  });

  it('a restarted detector keeps its baselines (checkpoint restore) and uses them at once', async () => {
    const d1 = await world.detector(OWN_BASELINE_ONLY);
    const warm = generateTraffic({ seed: 21, durationMs: 12_000, benign: 4, firstIndex: 500, profiles: ['steady'], rateScale: 3 });
    const live = await liveClients([h.pki], warm.clients);
    clients.push(...live);
    await replay(live, warm.requests, { bases: [h.base] });
    const target = warm.clients[0] as SimClient;
    await eventually(() => (d1.detector.engine.clients.get(target.spiffeId)?.events ?? 0) >= warm.requests.filter((r) => r.client === target.index).length, 15_000, 'd1 consumed the warm-up');
    const before = d1.detector.engine.clients.get(target.spiffeId);
    expect(before).toBeDefined();
    const snapshot = { n: before!.series.n, mean: Array.from(before!.series.mean), events: before!.events, first: before!.first };
    await d1.close(); // last checkpoint + commit

    const d2 = await world.detector(OWN_BASELINE_ONLY);
    await eventually(() => d2.ready(), 20_000, 'd2 restored');
    expect(d2.stats().restoredClients).toBeGreaterThanOrEqual(warm.clients.length);
    const after = d2.detector.engine.clients.get(target.spiffeId);
    expect(after).toBeDefined();
    expect(after!.events).toBe(snapshot.events);
    expect(after!.first).toBe(snapshot.first);
    expect(after!.series.n).toBe(snapshot.n);
    expect(Array.from(after!.series.mean)).toEqual(snapshot.mean);

    // The known client bursts right after the restart: judged against its restored baseline.
    const burst = generateTraffic({ seed: 22, durationMs: 4000, benign: 0, firstIndex: 500, attacks: [{ kind: 'flood', start: 0, durationMs: 4000, rate: 300 }] });
    let blocked: Sent | null = null;
    await replay(live.slice(0, 1), burst.requests, { bases: [h.base], stopClient: (_c, s) => s.code === 'BLOCKED', onResult: (s) => (blocked ??= s.code === 'BLOCKED' ? s : null) });
    expect(blocked).not.toBeNull();
    await eventually(() => h.decisions.some((d) => d.code === 'BLOCKED' && d.client.ip === target.ip), 5000, 'BLOCKED decision recorded').catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(h.decisions.filter((d) => d.code === 'BLOCKED').slice(0, 2).map((d) => [d.client, d.rule, d.identity?.subject]))} target ${target.ip}`);
    });
    const rec = h.decisions.find((d) => d.code === 'BLOCKED' && d.client.ip === target.ip);
    expect(rec?.rule).toBe('detector:rate.burst');
    await d2.close();
  });

  it('two instances share the partitions and every client is still watched', async () => {
    const d1 = await world.detector(CONFIG);
    const d2 = await world.detector(CONFIG);
    await eventually(() => d1.ready() && d2.ready() && d1.stats().assigned.length + d2.stats().assigned.length === 3 && d1.stats().assigned.length > 0 && d2.stats().assigned.length > 0, 30_000, 'both instances assigned').catch((err: Error) => {
      throw new Error(`${err.message}: d1 ${JSON.stringify(d1.stats())} ready=${d1.ready()}, d2 ${JSON.stringify(d2.stats())} ready=${d2.ready()}`);
    });
    const p1 = new Set(d1.stats().assigned);
    const p2 = new Set(d2.stats().assigned);
    expect([...p1].filter((p) => p2.has(p))).toEqual([]);
    expect([...p1, ...p2].sort()).toEqual([0, 1, 2]);

    const traffic = generateTraffic({
      seed: 23,
      durationMs: 26_000,
      benign: 10,
      firstIndex: 600,
      // One flood at a time: this test is about who watches whom, not about load.
      attacks: [0, 1, 2, 3, 4, 5].map((i) => ({ kind: 'flood' as const, start: 9000 + i * 2500, durationMs: 4000, rate: 200, warmAs: 'steady' as const })),
    });
    const live = await liveClients([h.pki], traffic.clients);
    clients.push(...live);
    const blocked = new Set<number>();
    await replay(live, traffic.requests, { bases: [h.base], stopClient: (_c, s) => s.code === 'BLOCKED', onResult: (s) => s.code === 'BLOCKED' && blocked.add(s.req.client) });

    // Every client is held by exactly one instance, the owner of its partition.
    const owners: string[] = [];
    for (const c of traffic.clients) {
      const in1 = d1.detector.engine.clients.get(c.spiffeId);
      const in2 = d2.detector.engine.clients.get(c.spiffeId);
      expect(Boolean(in1) !== Boolean(in2), `${c.name} watched by exactly one instance`).toBe(true);
      const state = (in1 ?? in2)!;
      expect((in1 ? p1 : p2).has(state.partition)).toBe(true);
      owners.push(in1 ? 'd1' : 'd2');
    }
    expect(new Set(owners).size).toBe(2);
    // Every attacker was blocked, whichever instance watched it; no benign client was.
    for (const c of traffic.clients) expect(blocked.has(c.index), `${c.name}`).toBe(c.attack !== null);
    const byInstance = { d1: d1.stats().blocks, d2: d2.stats().blocks };
    console.log(`two instances: partitions d1=${[...p1]} d2=${[...p2]}; clients d1=${owners.filter((o) => o === 'd1').length} d2=${owners.filter((o) => o === 'd2').length}; blocks issued d1=${byInstance.d1} d2=${byInstance.d2}`);
  });
});
