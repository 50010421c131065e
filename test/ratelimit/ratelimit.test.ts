import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log/logger.ts';
import { createServices } from '../../src/sidecar/compose.ts';
import { send, startHarness, until, type Harness } from '../support/harness.ts';

const A = 'spiffe://test.local/ns/shop/sa/greedy';
const B = 'spiffe://test.local/ns/shop/sa/polite';

const POLICY = `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: ratelimit-test, version: "1" }
spec:
  authorization:
    rules:
      - id: open
        paths: [/**]
        public: true
  rateLimits:
    rules:
      - id: per-client
        key: [identity]
        rate: 1
        per: minute
        burst: 3
        paths: [/api/**]
      - id: per-ip-trial
        key: [ip, route]
        rate: 1
        per: hour
        burst: 4
        paths: ["/trial/{id}"]
        audit: true
`;

describe('rate limits', () => {
  let h: Harness;
  let clock = 1_800_000_000_000;
  beforeAll(async () => {
    // Buckets refill by this clock, so the test never depends on how fast it runs.
    h = await startHarness(POLICY, { services: createServices(createLogger({ level: 'silent' }), () => clock) });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('limits two clients at once independently: one over, one under, with the headers', async () => {
    const a = await h.client(A);
    const b = await h.client(B);
    const [ra, rb] = await Promise.all([
      Promise.all(Array.from({ length: 5 }, () => send(a, `${h.base}/api/orders`))),
      Promise.all(Array.from({ length: 2 }, () => send(b, `${h.base}/api/orders`))),
    ]);
    expect(ra.map((r) => r.status).sort()).toEqual([200, 200, 200, 429, 429]);
    expect(rb.map((r) => r.status)).toEqual([200, 200]);

    for (const r of [...ra, ...rb]) expect(r.headers['ratelimit-policy']).toBe('"per-client";q=3;w=180');
    // Remaining counts of the allowed requests of A are 2, 1, 0 in some order; of B 2 and 1.
    const remaining = (rs: typeof ra) => rs.filter((r) => r.status === 200).map((r) => /;r=(\d+);/.exec(String(r.headers['ratelimit']))?.[1]).sort();
    expect(remaining(ra)).toEqual(['0', '1', '2']);
    expect(remaining(rb)).toEqual(['1', '2']);
    const limited = ra.find((r) => r.status === 429)!;
    expect(limited.headers['retry-after']).toBe('60');
    expect(limited.headers['ratelimit']).toBe('"per-client";r=0;t=180');
    expect(String(limited.headers['content-type'])).toMatch(/^application\/problem\+json/);
    expect(limited.json).toMatchObject({ code: 'RATE_LIMITED', status: 429 });
    await until(() => h.decisions.filter((d) => d.request.path === '/api/orders').length === 7);
    const denied = h.decisions.filter((d) => d.code === 'RATE_LIMITED');
    expect(denied).toHaveLength(2);
    for (const d of denied) expect(d).toMatchObject({ decidedBy: 'ratelimit', rule: 'per-client', identity: { subject: A }, response: { status: 429 } });
  });

  it('refills at the configured rate (controllable clock)', async () => {
    const a = await h.client(A);
    expect((await send(a, `${h.base}/api/orders`)).status).toBe(429);
    clock += 60_000; // one token per minute
    const r = await send(a, `${h.base}/api/orders`);
    expect(r.status).toBe(200);
    expect(r.headers['ratelimit']).toBe('"per-client";r=0;t=180');
    expect((await send(a, `${h.base}/api/orders`)).status).toBe(429);
    // Routes outside the rule are not limited.
    expect((await send(a, `${h.base}/health`)).status).toBe(200);
  });

  it('a dry-run rule records would_deny and never shows itself to the client', async () => {
    const a = await h.client(B);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await send(a, `${h.base}/trial/${i % 2}`);
      statuses.push(r.status);
      expect(r.headers['ratelimit']).toBeUndefined();
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200]);
    await until(() => h.decisions.filter((d) => d.request.path.startsWith('/trial/')).length === 6);
    const trial = h.decisions.filter((d) => d.request.path.startsWith('/trial/'));
    // Keyed by ip + route template: /trial/0 and /trial/1 share one bucket of 4.
    expect(trial.map((d) => d.wouldDeny.length)).toEqual([0, 0, 0, 0, 1, 1]);
    expect(trial[5]?.wouldDeny[0]).toEqual({ stage: 'ratelimit', code: 'RATE_LIMITED', rule: 'per-ip-trial' });
    expect(trial[5]).toMatchObject({ verdict: 'allow', request: { route: '/trial/{id}' } });
  });
});

const IP_POLICY = `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: ratelimit-ip, version: "1" }
spec:
  authorization:
    rules:
      - id: open
        paths: [/**]
        public: true
  rateLimits:
    rules:
      - id: per-ip
        key: [ip]
        rate: 1
        per: hour
        burst: 2
`;

describe('client IP for rate limits: X-Forwarded-For', () => {
  let clock = 1_800_000_000_000;
  const services = () => createServices(createLogger({ level: 'silent' }), () => clock);

  it('ignores X-Forwarded-For from an untrusted peer, so rotating it does not escape the limit', async () => {
    const h = await startHarness(IP_POLICY, { services: services() });
    try {
      const c = await h.client(A);
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await send(c, `${h.base}/x`, { headers: { 'x-forwarded-for': `198.51.100.${i}` } })).status);
      expect(statuses).toEqual([200, 200, 429, 429]);
      await until(() => h.decisions.length === 4);
      expect(new Set(h.decisions.map((d) => d.client.ip))).toEqual(new Set(['127.0.0.1']));
      // The upstream sees the sidecar's view, not the client's claim.
      expect(h.upstream.requests.map((r) => r.headers['x-forwarded-for'])).toEqual(['127.0.0.1', '127.0.0.1']);
    } finally {
      await h.close();
    }
  });

  it('believes X-Forwarded-For from a trusted proxy, right to left, skipping trusted hops', async () => {
    const h = await startHarness(IP_POLICY, { services: services(), env: { PALISADE_TRUSTED_PROXIES: '127.0.0.0/8, 10.0.0.0/8' } });
    try {
      const c = await h.client(A);
      // The client wrote 203.0.113.9 itself; 198.51.100.7 is what the trusted 10.1.1.1 proxy saw.
      const xff = '203.0.113.9, 198.51.100.7, 10.1.1.1';
      const r = [];
      for (let i = 0; i < 3; i++) r.push((await send(c, `${h.base}/x`, { headers: { 'x-forwarded-for': xff } })).status);
      expect(r).toEqual([200, 200, 429]);
      // Another client behind the same proxy has its own bucket.
      expect((await send(c, `${h.base}/x`, { headers: { 'x-forwarded-for': '198.51.100.8, 10.1.1.1' } })).status).toBe(200);
      await until(() => h.decisions.length === 4);
      expect(h.decisions.map((d) => d.client.ip)).toEqual(['198.51.100.7', '198.51.100.7', '198.51.100.7', '198.51.100.8']);
    } finally {
      await h.close();
    }
  });
});
