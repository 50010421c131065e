/**
 * The fleet-wide quota scenario on the real broker, shared by the quota-fleet tests: three real
 * sidecar processes publish their decisions to Kafka and follow the quota topic; one or more
 * detector instances (their quota aggregators) count them. One tenant sends at a steady rate
 * spread over the three sidecars against a quota of N per minute: it gets at most N plus a small
 * overshoot in the window, every sidecar refuses it soon after the fleet crossed N, another
 * tenant is unaffected, and after the window the tenant is served again. The overshoot and the
 * time from crossing to enforcement at each sidecar are printed (docs/quotas.md figures).
 */
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KafkaDetector } from '../../../detectors/kafka/service.ts';
import { send } from '../../support/harness.ts';
import { sidecarProcessBed, type SidecarProcess } from '../../support/sidecar-process.ts';
import { createWorld, eventually, type World } from './kafka-env.ts';

const MINUTE = 60_000;

export interface QuotaFleetScenario {
  readonly title: string;
  readonly tag: string;
  /** The policy every sidecar runs: its quota of `n` per minute, and a global rule "warm-up" (limit 1) on /warm-up. */
  readonly policy: string;
  readonly n: number;
  /** Detector instances in one group (their aggregators share the decisions partitions). */
  readonly detectors: number;
  /** The tenant: its clients' SPIFFE IDs (taken in turn) and the path it calls. */
  readonly tenant: { readonly clients: readonly string[]; readonly path: string };
  /** Another tenant, under a quota of its own or none. */
  readonly other: { readonly client: string; readonly path: string };
}

interface Sent {
  readonly sidecar: number;
  readonly status: number;
  readonly startAt: number;
  readonly doneAt: number;
  readonly retryAfter: string | undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function quotaFleetSuite(o: QuotaFleetScenario): void {
  const N = o.n;
  describe(o.title, () => {
    const bed = sidecarProcessBed(o.policy);
    let world: World;
    const detectors: KafkaDetector[] = [];
    const sidecars: SidecarProcess[] = [];
    const agents = new Map<string, Agent>();

    async function agent(spiffeId: string): Promise<Agent> {
      let a = agents.get(spiffeId);
      if (!a) {
        const pem = await bed.pki.client(spiffeId);
        a = new Agent({ connect: { ca: bed.pki.ca.cert, cert: pem.cert, key: pem.key, servername: 'localhost', rejectUnauthorized: true } });
        agents.set(spiffeId, a);
      }
      return a;
    }

    beforeAll(async () => {
      world = createWorld(o.tag);
      // The detectors first: they create the quota topic the sidecars follow.
      for (let i = 0; i < o.detectors; i++) detectors.push(await world.detector());
      // Every aggregator has its share of the decisions partitions (the group has settled).
      await eventually(() => {
        const parts = detectors.map((d) => d.quotaStats().assigned);
        return parts.every((p) => p.length > 0) && new Set(parts.flat()).size === parts.flat().length && parts.flat().length === Number(world.env['PALISADE_KAFKA_TOPIC_PARTITIONS']);
      }, 90_000, 'quota aggregators share the partitions');
      for (let i = 0; i < 3; i++) {
        sidecars.push(await bed.start({ ...bed.env(), ...world.env, PALISADE_LOG_LEVEL: 'info' }, 60_000));
      }
      for (const s of sidecars) await eventually(() => s.log.some((l) => l.includes('quota entries rebuilt from the topic')), 30_000, 'quota feed ready');
      // End to end ready (the aggregators have joined their group and count, every sidecar
      // follows): a warm-up key over a quota of 1 is refused at every sidecar.
      const warm = await agent('spiffe://test.local/ns/shop/sa/warm-up');
      for (const s of sidecars) await eventually(async () => (await send(warm, `${s.base}/warm-up`)).status === 429, 60_000, 'warm-up key refused');
    }, 240_000);
    afterAll(async () => {
      for (const a of agents.values()) await a.close();
      for (const s of sidecars) s.child.kill('SIGTERM');
      await Promise.all(sidecars.map((s) => s.exited));
      await world?.close();
    }, 60_000);

    it('caps one tenant at N + a small overshoot per window across the fleet, leaves another alone, serves it again next window', { timeout: 300_000 }, async () => {
      for (const d of detectors) expect(d.ready()).toBe(true);
      // Start where at least 45 s of the current minute are left, so the whole run is one window.
      if (MINUTE - (Date.now() % MINUTE) < 45_000) await sleep(MINUTE - (Date.now() % MINUTE) + 200);
      const windowStart = Math.floor(Date.now() / MINUTE) * MINUTE;
      const windowEnd = windowStart + MINUTE;
      const clients = await Promise.all(o.tenant.clients.map((c) => agent(c)));
      const sent: Sent[] = [];
      const refusingSince: (number | null)[] = [null, null, null];
      // One lane per sidecar, a request every ~40 ms each (~75 per second for the fleet at most):
      // steady load, N is crossed in a few seconds. The tenant's clients are taken in turn.
      await Promise.all(
        sidecars.map(async (s, i) => {
          for (let k = 0; ; k++) {
            const startAt = Date.now();
            if (startAt >= windowEnd - 1000) return;
            // Every sidecar has refused for 3 s: enough seen.
            if (refusingSince.every((t) => t !== null && startAt - t > 3000)) return;
            const r = await send(clients[(k * sidecars.length + i) % clients.length]!, `${s.base}${o.tenant.path}`);
            const doneAt = Date.now();
            sent.push({ sidecar: i, status: r.status, startAt, doneAt, retryAfter: r.headers['retry-after'] as string | undefined });
            if (r.status === 429) {
              expect(r.json).toMatchObject({ code: 'QUOTA_EXCEEDED' });
              refusingSince[i] ??= doneAt;
            } else {
              expect(r.status).toBe(200);
              refusingSince[i] = null;
            }
            await sleep(Math.max(0, 40 - (Date.now() - startAt)));
          }
        }),
      );
      const inWindow = sent.filter((x) => x.startAt >= windowStart && x.startAt < windowEnd);
      const allowed = inWindow.filter((x) => x.status === 200).sort((a, b) => a.doneAt - b.doneAt);
      const overshoot = allowed.length - N;
      // Crossing: the N-th request let through (or, when the sidecars stopped on their fair shares
      // short of N, the last one); enforcement at a sidecar: its first refusal after which it let
      // nothing more through (negative: it stopped on its share before the fleet crossed).
      const crossing = (allowed[N - 1] ?? allowed.at(-1))?.doneAt ?? Number.NaN;
      const toEnforce = [0, 1, 2].map((i) => {
        const mine = inWindow.filter((x) => x.sidecar === i);
        const lastOk = mine.filter((x) => x.status === 200).reduce((m, x) => Math.max(m, x.doneAt), 0);
        const firstRefusal = mine.filter((x) => x.status === 429 && x.doneAt > lastOk).reduce((m, x) => Math.min(m, x.doneAt), Infinity);
        return firstRefusal - crossing;
      });
      const seconds = (windowEnd - Date.now()) / 1000;
      const rate = inWindow.length / ((Math.max(...inWindow.map((x) => x.doneAt)) - windowStart) / 1000);
      const split = detectors.map((d) => d.quotaStats().assigned.join(',')).join(' | ');
      console.log(
        `global quota, 3 sidecar processes, ${o.detectors} detector(s) (aggregator partitions ${split}), ${o.tenant.clients.length} client(s): quota ${N}/minute, ${inWindow.length} requests at ~${rate.toFixed(0)}/s, ${allowed.length} allowed: overshoot ${overshoot} (${((overshoot / N) * 100).toFixed(1)}% of the quota${overshoot < 0 ? ': the fair shares held some back' : ''}); crossing -> enforcement at each sidecar: ${toEnforce.map((ms) => `${ms} ms`).join(', ')}; per allowed sidecar: ${[0, 1, 2].map((i) => allowed.filter((x) => x.sidecar === i).length).join('/')}`,
      );
      // Fair shares may hold a few requests back (never more than the 10% left when they start).
      expect(allowed.length).toBeGreaterThanOrEqual(Math.floor(N * 0.9));
      // The target is 5% (docs/quotas.md has the figures measured); a loaded CI machine slows the
      // stream more than the requests, so the test holds the fleet to twice that.
      expect(overshoot).toBeLessThanOrEqual(Math.ceil(N * 0.1));
      for (const ms of toEnforce) expect(Number.isFinite(ms)).toBe(true);
      // Retry-After points at the end of the window.
      const last = inWindow.filter((x) => x.status === 429).at(-1);
      expect(Number(last?.retryAfter)).toBeGreaterThan(0);
      expect(Number(last?.retryAfter)).toBeLessThanOrEqual(Math.ceil((windowEnd - (last?.startAt ?? 0)) / 1000));

      // Another tenant is unaffected, at every sidecar.
      if (seconds > 2) {
        const other = await agent(o.other.client);
        for (const s of sidecars) expect((await send(other, `${s.base}${o.other.path}`)).status).toBe(200);
      }

      // After the window the tenant is served again, at every sidecar.
      await sleep(Math.max(0, windowEnd - Date.now() + 100));
      for (const s of sidecars) expect((await send(clients[0]!, `${s.base}${o.tenant.path}`)).status).toBe(200);
    });
  });
}
