/**
 * A broken upstream never hangs a client and never leaks: refused -> 502,
 * too slow -> 504, a small body cut off or stalled -> 502/504, each with a
 * stable code and nothing from the upstream. Answers that are fine arrive
 * exactly as sent, whether read whole or streamed.
 */
import { createServer } from 'node:net';
import { request } from 'undici';
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

describe('upstream answers, read whole or streamed', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(POLICY, { env: { PALISADE_UPSTREAM_TIMEOUT_MS: '1000' } });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('answers 502 with none of the upstream headers when a small body breaks off halfway', async () => {
    h.upstream.handler = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100', 'x-upstream-secret': 'internal', 'set-cookie': 'sid=1' });
      res.write('{"partial":');
      setTimeout(() => res.socket?.destroy(), 50);
    };
    const a = await h.client('spiffe://test.local/ns/a/sa/b');
    const r = await send(a, `${h.base}/cut`);
    expect(r.status).toBe(502);
    expect(r.json).toMatchObject({ code: 'UPSTREAM_ERROR' });
    expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(r.headers['x-upstream-secret']).toBeUndefined();
    expect(r.headers['set-cookie']).toBeUndefined();
    expect(r.headers['x-request-id']).toBe(r.json?.['request_id']);
    expect(r.text).not.toContain('partial');
    await until(() => h.decisions.some((d) => d.request.path === '/cut'));
    expect(h.decisions.find((d) => d.request.path === '/cut')).toMatchObject({ verdict: 'deny', code: 'UPSTREAM_ERROR', decidedBy: 'upstream', response: { status: 502 } });
  });

  it('answers 504 with none of the upstream headers when a small body stalls past the upstream timeout', async () => {
    h.upstream.handler = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100', 'x-upstream-secret': 'internal' });
      res.write('{"slow":');
      setTimeout(() => res.end(), 3000);
    };
    const a = await h.client('spiffe://test.local/ns/a/sa/b');
    const r = await send(a, `${h.base}/stall`);
    expect(r.status).toBe(504);
    expect(r.json).toMatchObject({ code: 'UPSTREAM_TIMEOUT' });
    expect(r.headers['x-upstream-secret']).toBeUndefined();
    expect(r.text).not.toContain('slow');
    await until(() => h.decisions.some((d) => d.request.path === '/stall'));
    expect(h.decisions.find((d) => d.request.path === '/stall')).toMatchObject({ verdict: 'deny', code: 'UPSTREAM_TIMEOUT', response: { status: 504 } });
  });

  it('records one decision when the client leaves while a small body is still on its way, and serves on', async () => {
    h.upstream.handler = (req, _body, res) => {
      if (req.url === '/late-body') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '11' });
        res.write('{"ok":');
        setTimeout(() => res.end('true}'), 400);
      } else {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '11' });
        res.end('{"ok":true}');
      }
    };
    const a = await h.client('spiffe://test.local/ns/a/sa/b');
    // Leave once the upstream has the request and has begun its answer (a fixed timeout could
    // fire before a busy machine even delivered the request: then there was nothing to record).
    const seen = h.upstream.requests.length;
    const ac = new AbortController();
    const pending = request(`${h.base}/late-body`, { dispatcher: a, signal: ac.signal }).then((r) => r.body.text());
    await until(() => h.upstream.requests.length > seen);
    await new Promise((r) => setTimeout(r, 150));
    ac.abort();
    await expect(pending).rejects.toThrow();
    await until(() => h.decisions.some((d) => d.request.path === '/late-body'));
    await new Promise((r) => setTimeout(r, 500)); // the body arrives after the client left
    const mine = h.decisions.filter((d) => d.request.path === '/late-body');
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ code: 'REQUEST_TIMEOUT', response: { status: 499 } });
    const next = await send(a, `${h.base}/after`);
    expect(next.status).toBe(200);
    expect(next.text).toBe('{"ok":true}');
  });

  it('passes small, large, untyped, chunked and HEAD answers through byte for byte', async () => {
    const large = Buffer.alloc(200 * 1024, 'x');
    h.upstream.handler = (req, _body, res) => {
      if (req.url === '/small') {
        res.writeHead(201, { 'content-type': 'application/json', 'content-length': '11', etag: '"v1"' });
        res.end('{"ok":true}');
      } else if (req.url === '/large') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(large.length) });
        res.end(large);
      } else if (req.url === '/untyped') {
        res.writeHead(200, { 'content-length': '2' });
        res.end('ok');
      } else if (req.url === '/chunked') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('one,');
        setTimeout(() => res.end('two'), 20);
      } else {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '5000' });
        res.end();
      }
    };
    const a = await h.client('spiffe://test.local/ns/a/sa/b');
    const small = await send(a, `${h.base}/small`);
    expect(small.status).toBe(201);
    expect(small.text).toBe('{"ok":true}');
    expect(small.headers['content-length']).toBe('11');
    expect(small.headers['etag']).toBe('"v1"');
    const big = await send(a, `${h.base}/large`);
    expect(big.status).toBe(200);
    expect(big.text === large.toString('latin1')).toBe(true);
    const untyped = await send(a, `${h.base}/untyped`);
    expect(untyped.text).toBe('ok');
    expect(untyped.headers['content-type']).toBeUndefined();
    const chunked = await send(a, `${h.base}/chunked`);
    expect(chunked.text).toBe('one,two');
    const head = await send(a, `${h.base}/head`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe('5000');
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
