/**
 * A client leaving is a decision (499), not a server fault: one record per request and no
 * warning or error line (a load test's end used to print an error with a stack per abort:
 * fastify destroys the forwarded answer's stream when the response closes, and undici's
 * UND_ERR_ABORTED reached the error handler). Every answer the sidecar makes itself carries
 * X-Request-Id, denied and malformed ones included.
 */
import { connect, type TLSSocket } from 'node:tls';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLog } from '../support/log-capture.ts';
import { send, startHarness, until, type Harness } from '../support/harness.ts';

const POLICY = `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: abort, version: "1" }
spec:
  authorization:
    rules:
      - id: open
        paths: ["/open/**"]
        public: true
`;

describe('client aborts and request ids', () => {
  let h: Harness;
  const log = captureLog('debug');
  const loud = () => log.records().filter((r) => (r['level'] as number) >= 40);
  let socket: (text: string) => Promise<TLSSocket>;
  beforeAll(async () => {
    h = await startHarness(POLICY, { logger: log.logger });
    const pem = await h.pki.client('spiffe://test.local/ns/a/sa/raw');
    socket = (text) =>
      new Promise((resolve) => {
        const s = connect({ host: '127.0.0.1', port: h.sidecar.tlsPort, ca: h.pki.ca.cert, cert: pem.cert, key: pem.key, servername: 'localhost' }, () => {
          s.write(text);
          resolve(s);
        });
        s.on('error', () => undefined);
        s.on('data', () => undefined);
      });
    h.upstream.handler = (req, _body, res) => {
      if (req.url === '/open/slow') {
        // Nothing for a while: the client leaves before the upstream answers at all.
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"late":true}');
        }, 600);
      } else if (req.url === '/open/headers-only') {
        // Headers out, body late: the client leaves while fastify holds the body stream.
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.flushHeaders();
        setTimeout(() => res.end('late'), 600);
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      }
    };
  });
  afterAll(async () => {
    await h?.close();
  });

  it('records a client that leaves while the answer streams as one 499 decision, with no warning or error line', async () => {
    const a = await h.client('spiffe://test.local/ns/a/sa/b');
    for (let i = 0; i < 5; i++) {
      // Leave once the upstream has the request (and is about to answer its headers).
      const seen = h.upstream.requests.length;
      const ac = new AbortController();
      const pending = request(`${h.base}/open/headers-only`, { dispatcher: a, signal: ac.signal }).then((r) => r.body.text());
      await until(() => h.upstream.requests.length > seen);
      await new Promise((r) => setTimeout(r, 100));
      ac.abort();
      await expect(pending).rejects.toThrow();
    }
    await until(() => h.decisions.filter((d) => d.request.path === '/open/headers-only').length === 5);
    await new Promise((r) => setTimeout(r, 700)); // the late bodies arrive after the clients left
    const mine = h.decisions.filter((d) => d.request.path === '/open/headers-only');
    expect(mine).toHaveLength(5);
    for (const d of mine) expect(d).toMatchObject({ code: 'REQUEST_TIMEOUT', response: { status: 499 } });
    expect(loud()).toEqual([]);
    expect(log.records().some((r) => r['msg'] === 'client closed the connection')).toBe(true);
  });

  it('records a client that leaves before the upstream answers as one 499 decision, with no warning or error line', async () => {
    const a = await h.client('spiffe://test.local/ns/a/sa/b');
    for (let i = 0; i < 3; i++) {
      const seen = h.upstream.requests.length;
      const ac = new AbortController();
      const pending = request(`${h.base}/open/slow`, { dispatcher: a, signal: ac.signal, method: i === 0 ? 'GET' : 'POST', body: i === 0 ? undefined : '{"a":1}', headers: i === 0 ? {} : { 'content-type': 'application/json' } }).then((r) => r.body.text());
      await until(() => h.upstream.requests.length > seen);
      ac.abort();
      await expect(pending).rejects.toThrow();
    }
    await new Promise((r) => setTimeout(r, 900)); // the upstream's late answers arrive after the clients left
    const mine = h.decisions.filter((d) => d.request.path === '/open/slow');
    expect(mine).toHaveLength(3);
    for (const d of mine) expect(d).toMatchObject({ code: 'REQUEST_TIMEOUT', response: { status: 499 } });
    expect(loud()).toEqual([]);
  });

  it('records an upload cut short as the client leaving (499), not a malformed request or an upstream error', async () => {
    for (let i = 0; i < 3; i++) {
      const s = await socket('POST /open/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\nContent-Type: application/json\r\n\r\n{"a":');
      await until(() => h.decisions.length >= 0 && h.upstream.requests.length >= 0);
      await new Promise((r) => setTimeout(r, 100));
      s.destroy();
    }
    await until(() => h.decisions.filter((d) => d.request.path === '/open/upload').length === 3);
    await new Promise((r) => setTimeout(r, 300));
    const mine = h.decisions.filter((d) => d.request.path === '/open/upload');
    expect(mine).toHaveLength(3);
    for (const d of mine) expect(d).toMatchObject({ code: 'REQUEST_TIMEOUT', response: { status: 499 } });
    expect(loud()).toEqual([]);
  });

  it('has no warning or error line when many keep-alive clients are cut off mid-traffic', async () => {
    const pem = await h.pki.client('spiffe://test.local/ns/load/sa/gen');
    const agent = new Agent({ connections: 20, connect: { ca: h.pki.ca.cert, cert: pem.cert, key: pem.key, servername: 'localhost' } });
    let stop = false;
    let sent = 0;
    const loops = Array.from({ length: 20 }, async (_, i) => {
      while (!stop) {
        try {
          sent++;
          const r = await request(`${h.base}/open/items/${i}`, { dispatcher: agent, method: i % 2 ? 'POST' : 'GET', ...(i % 2 ? { body: '{"a":1}'.repeat(500), headers: { 'content-type': 'application/json' } } : {}) });
          await r.body.text();
        } catch {
          break;
        }
      }
    });
    await until(() => sent > 200, 20_000);
    stop = true;
    await agent.destroy();
    await Promise.all(loops);
    await new Promise((r) => setTimeout(r, 500));
    const mine = h.decisions.filter((d) => d.request.path.startsWith('/open/items/'));
    for (const d of mine) expect([200, 499]).toContain(d.response.status);
    expect(loud()).toEqual([]);
  });

  it('puts X-Request-Id on a denied answer, matching the problem body and the decision', async () => {
    const a = await h.client('spiffe://test.local/ns/a/sa/b');
    const r = await send(a, `${h.base}/closed/x`);
    expect(r.status).toBe(403);
    expect(r.headers['x-request-id']).toBeTypeOf('string');
    expect(r.headers['x-request-id']).toBe(r.json?.['request_id']);
    await until(() => h.decisions.some((d) => d.requestId === r.headers['x-request-id']));
    expect(h.decisions.find((d) => d.requestId === r.headers['x-request-id'])).toMatchObject({ code: 'AUTHZ_NO_MATCHING_RULE', response: { status: 403 } });
  });

  it('puts X-Request-Id on the answer to a malformed request, matching the problem body and the decision', async () => {
    const s = await socket('GET /open/x HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n');
    const raw = await new Promise<string>((resolve) => {
      let out = '';
      s.removeAllListeners('data');
      s.on('data', (d: Buffer) => (out += d.toString('latin1')));
      s.on('close', () => resolve(out));
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    const id = /\r\nX-Request-Id: ([0-9a-f]+)\r\n/i.exec(raw)?.[1];
    expect(id).toBeDefined();
    expect(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4))).toMatchObject({ code: 'REQUEST_MALFORMED', request_id: id });
    await until(() => h.decisions.some((d) => d.requestId === id));
    expect(h.decisions.find((d) => d.requestId === id)).toMatchObject({ code: 'REQUEST_MALFORMED', response: { status: 400 } });
  });
});
