/**
 * A broken upstream never hangs a client and never leaks: refused -> 502,
 * too slow -> 504, each with a stable code and nothing from the upstream.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startHarness, until, type Harness } from '../support/harness.ts';

const POLICY = `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: upstream }
spec:
  authorization:
    rules: [{ id: all, paths: ["/**"], public: true }]
`;

describe('upstream failures', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(POLICY, { env: { PALISADE_UPSTREAM_TIMEOUT_MS: '300', PALISADE_UPSTREAM_CONNECT_TIMEOUT_MS: '300' } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('answers 504 UPSTREAM_TIMEOUT when the upstream is too slow', async () => {
    h.upstream.handler = (_req, _body, res) => {
      setTimeout(() => res.end('late'), 2000);
    };
    const a = await h.client('spiffe://test.local/ns/a/sa/b');
    const r = await send(a, `${h.base}/slow`);
    expect(r.status).toBe(504);
    expect(r.json).toMatchObject({ code: 'UPSTREAM_TIMEOUT' });
    expect(r.text).not.toMatch(/late|undici|ECONN|at /);
    await until(() => h.decisions.some((d) => d.code === 'UPSTREAM_TIMEOUT'));
    expect(h.decisions.find((d) => d.code === 'UPSTREAM_TIMEOUT')).toMatchObject({ verdict: 'deny', decidedBy: 'upstream' });
  });

  it('passes an upstream error status through as the service answered it', async () => {
    h.upstream.handler = (_req, _body, res) => {
      res.statusCode = 500;
      res.end('{"error":"boom"}');
    };
    const a = await h.client('spiffe://test.local/ns/a/sa/b');
    const r = await send(a, `${h.base}/err`);
    expect(r.status).toBe(500);
    await until(() => h.decisions.some((d) => d.request.path === '/err'));
    expect(h.decisions.find((d) => d.request.path === '/err')).toMatchObject({ verdict: 'allow', code: 'ALLOWED', response: { status: 500 } });
  });

  it('answers 502 when the upstream resets the connection mid-response', async () => {
    h.upstream.handler = (req) => {
      req.socket.destroy();
    };
    const a = await h.client('spiffe://test.local/ns/a/sa/b');
    const r = await send(a, `${h.base}/reset`);
    expect(r.status).toBe(502);
    expect(r.json).toMatchObject({ code: 'UPSTREAM_ERROR' });
  });
});

describe('unreachable upstream', () => {
  it('answers 502 UPSTREAM_UNREACHABLE when nothing listens', async () => {
    // Find a port with nothing on it.
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const h = await startHarness(POLICY, { env: { PALISADE_UPSTREAM: `http://127.0.0.1:${port}` } });
    try {
      const a = await h.client('spiffe://test.local/ns/a/sa/b');
      const r = await send(a, `${h.base}/x`);
      expect(r.status).toBe(502);
      expect(r.json).toMatchObject({ code: 'UPSTREAM_UNREACHABLE', status: 502 });
      expect(typeof r.json?.['request_id']).toBe('string');
    } finally {
      await h.close();
    }
  });
});
