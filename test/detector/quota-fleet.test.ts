// Fleet-wide quotas on the real broker: three real sidecar processes publish their decisions to
// Kafka and follow the quota topic; one detector (its quota aggregator) counts them. One tenant
// sends at a steady rate spread over the three sidecars against a quota of N per minute: it gets
// at most N plus a small overshoot in the window, every sidecar refuses it soon after the fleet
// crossed N, another tenant is unaffected, and after the window the tenant is served again. The
// overshoot and the time from crossing to enforcement at each sidecar are printed (README figures).
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KafkaDetector } from '../../detectors/kafka/service.ts';
import { send } from '../support/harness.ts';
import { sidecarProcessBed, type SidecarProcess } from '../support/sidecar-process.ts';
import { createWorld, eventually, type World } from './support/kafka-env.ts';

const N = 150;
const MINUTE = 60_000;
const TENANT = 'spiffe://test.local/ns/shop/sa/tenant-a';
const OTHER = 'spiffe://test.local/ns/shop/sa/tenant-b';

const POLICY = `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: quota-fleet, version: "1" }
spec:
  authentication:
    mtls: { trustDomains: [test.local] }
    defaultRequire: mtls
  authorization:
    rules:
      - { id: all, paths: ["/**"], authenticated: true }
  rateLimits:
    rules:
      - { id: per-tenant, scope: global, key: [identity], limit: ${N}, window: minute, paths: ["/api/**"] }
      - { id: warm-up, scope: global, key: [identity], limit: 1, window: hour, paths: ["/warm-up"] }
`;

interface Sent {
  readonly sidecar: number;
  readonly status: number;
  readonly startAt: number;
  readonly doneAt: number;
  readonly retryAfter: string | undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('global quota across three sidecar processes (real broker)', () => {
  const bed = sidecarProcessBed(POLICY);
  let world: World;
  let detector: KafkaDetector;
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
    world = createWorld('quota');
    // The detector first: it creates the quota topic the sidecars follow.
    detector = await world.detector();
    for (let i = 0; i < 3; i++) {
      sidecars.push(await bed.start({ ...bed.env(), ...world.env, PALISADE_LOG_LEVEL: 'info' }, 60_000));
    }
    for (const s of sidecars) await eventually(() => s.log.some((l) => l.includes('quota entries rebuilt from the topic')), 30_000, 'quota feed ready');
    // End to end ready (the aggregator has joined its group and counts, every sidecar follows):
    // a warm-up key over a quota of 1 is refused at every sidecar.
    const warm = await agent('spiffe://test.local/ns/shop/sa/warm-up');
    for (const s of sidecars) await eventually(async () => (await send(warm, `${s.base}/warm-up`)).status === 429, 60_000, 'warm-up key refused');
  }, 180_000);
  afterAll(async () => {
    for (const a of agents.values()) await a.close();
    for (const s of sidecars) s.child.kill('SIGTERM');
    await Promise.all(sidecars.map((s) => s.exited));
    await world?.close();
  }, 60_000);

  it('caps one tenant at N + a small overshoot per window across the fleet, leaves another alone, serves it again next window', { timeout: 300_000 }, async () => {
    expect(detector.ready()).toBe(true);
    // Start where at least 45 s of the current minute are left, so the whole run is one window.
    if (MINUTE - (Date.now() % MINUTE) < 45_000) await sleep(MINUTE - (Date.now() % MINUTE) + 200);
    const windowStart = Math.floor(Date.now() / MINUTE) * MINUTE;
    const windowEnd = windowStart + MINUTE;
    const tenant = await agent(TENANT);
    const sent: Sent[] = [];
    const refusingSince: (number | null)[] = [null, null, null];
    // One lane per sidecar, a request every ~40 ms each (~75 per second for the fleet at most):
    // steady load, N is crossed in a few seconds.
    await Promise.all(
      sidecars.map(async (s, i) => {
        for (;;) {
          const startAt = Date.now();
          if (startAt >= windowEnd - 1000) return;
          // Every sidecar has refused for 3 s: enough seen.
          if (refusingSince.every((t) => t !== null && startAt - t > 3000)) return;
          const r = await send(tenant, `${s.base}/api/orders`);
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
    console.log(
      `global quota, 3 sidecar processes, 1 detector: quota ${N}/minute, ${inWindow.length} requests at ~${rate.toFixed(0)}/s, ${allowed.length} allowed: overshoot ${overshoot} (${((overshoot / N) * 100).toFixed(1)}% of the quota${overshoot < 0 ? ': the fair shares held some back' : ''}); crossing -> enforcement at each sidecar: ${toEnforce.map((ms) => `${ms} ms`).join(', ')}; per allowed sidecar: ${[0, 1, 2].map((i) => allowed.filter((x) => x.sidecar === i).length).join('/')}`,
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
      const other = await agent(OTHER);
      for (const s of sidecars) expect((await send(other, `${s.base}/api/orders`)).status).toBe(200);
    }

    // After the window the tenant is served again, at every sidecar.
    await sleep(Math.max(0, windowEnd - Date.now() + 100));
    for (const s of sidecars) expect((await send(tenant, `${s.base}/api/orders`)).status).toBe(200);
  });
});
