import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startHarness, until, type Harness } from '../support/harness.ts';
import { pause, rawConnect } from './raw-client.ts';

const PEER = 'spiffe://test.local/ns/shop/sa/uploader';

const POLICY = `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: limits-test, version: "1" }
spec:
  authorization:
    rules:
      - id: open
        paths: [/**]
        public: true
  limits:
    maxUrlLength: 256
    maxHeaderCount: 30
    maxBodyBytes: 4096
    maxJsonDepth: 8
    maxJsonKeys: 50
    routes:
      - id: uploads
        methods: [POST, PUT]
        paths: [/upload/**]
        maxBodyBytes: 65536
        contentTypes: [application/octet-stream]
      - id: json-in
        paths: [/json/**]
        contentTypes: [application/json, application/*+json]
      - id: trial
        paths: [/trial/**]
        maxBodyBytes: 16
        maxJsonDepth: 2
        audit: true
  validation:
    unknownRoutes: allow
    routes:
      - id: profile
        method: PUT
        path: /json/profile
        body:
          content:
            application/json: { type: object }
      - id: trial-profile
        method: PUT
        path: /trial/profile
        body:
          content:
            application/json: { type: array }
`;

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const manyKeys = (n: number) => JSON.stringify(Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i])));

describe('limits', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(POLICY, { env: { PALISADE_HEADERS_TIMEOUT_MS: '600', PALISADE_REQUEST_TIMEOUT_MS: '1500' } });
  });
  afterAll(async () => {
    await h?.close();
  });
  const postWhole = async (path: string, body: string, ct = 'application/json', method = 'POST') => send(await h.client(PEER), `${h.base}${path}`, { method, headers: { 'content-type': ct }, body });
  const post = postWhole;
  /** The decision event of a refused request, found by the request id its problem body carries. */
  const decisionOf = async (r: { json: Record<string, unknown> | null }) => {
    const id = r.json?.['request_id'];
    await until(() => h.decisions.some((d) => d.requestId === id));
    return h.decisions.find((d) => d.requestId === id);
  };
  /** The same, chunked (no Content-Length), so the body streams through the guard instead of being read whole. */
  const postChunked = async (path: string, body: string, ct = 'application/json', method = 'POST') => {
    const res = await request(`${h.base}${path}`, { dispatcher: await h.client(PEER), method: method as 'POST', headers: { 'content-type': ct }, body: Readable.from([Buffer.from(body)]) });
    const text = await res.body.text();
    let json: Record<string, unknown> | null = null;
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      json = null;
    }
    return { status: res.statusCode, json, text };
  };

  it('refuses a body whose Content-Length is over the limit before reading it', async () => {
    const n = h.upstream.requests.length;
    const r = await post('/json/big', JSON.stringify({ blob: 'x'.repeat(5000) }));
    expect(r.status).toBe(413);
    // The client hears which limit, not its number; the event has the number.
    expect(r.json).toMatchObject({ code: 'BODY_TOO_LARGE', detail: 'the request body is larger than this route accepts' });
    expect(r.text).not.toContain('4096');
    expect(await decisionOf(r)).toMatchObject({ code: 'BODY_TOO_LARGE', detail: 'request body exceeds 4096 bytes' });
    expect(r.headers['connection']).toBe('close');
    // A route rule raises the limit for its routes.
    expect((await post('/upload/a', 'y'.repeat(60_000), 'application/octet-stream')).status).toBe(200);
    expect(h.upstream.requests.length).toBe(n + 1);
  });

  it('cuts a streamed (chunked) upload off at the limit instead of buffering it', async () => {
    const conn = await rawConnect(h, PEER);
    await conn.write('POST /upload/stream HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n');
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    const total = 512; // 8 MiB offered
    let sent = 0;
    while (sent < total && (await conn.write(Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')])))) sent++;
    await Promise.race([conn.closed, until(() => conn.received().includes('\r\n\r\n{'))]);
    expect(sent).toBeLessThan(total);
    expect(conn.received()).toMatch(/^HTTP\/1\.1 413 /);
    expect(conn.received()).toContain('"code":"BODY_TOO_LARGE"');
    conn.socket.destroy();
    // The upstream never saw a complete request.
    expect(h.upstream.requests.some((r) => r.url === '/upload/stream')).toBe(false);
    await until(() => h.decisions.some((d) => d.request.path === '/upload/stream'));
    expect(h.decisions.find((d) => d.request.path === '/upload/stream')).toMatchObject({ decidedBy: 'validation', code: 'BODY_TOO_LARGE', rule: 'uploads' });
  });

  it.each([
    ['streamed (chunked)', '/json/stream', 'POST', true],
    ['read whole (small, no schema)', '/json/small', 'POST', false],
    ['read for a schema', '/json/profile', 'PUT', false],
  ])('refuses deeply nested, key-flooded, prototype-polluting and duplicate-key JSON (%s)', async (_how, path, method, chunked) => {
    const post = chunked ? postChunked : postWhole;
    const n = h.upstream.requests.filter((r) => r.url === path).length;
    const DEPTH = 'the JSON body is nested deeper than this route accepts';
    const KEYS = 'the JSON body has more keys than this route accepts';
    const PROTO = 'the JSON body has a __proto__, constructor or prototype key';
    const DUP = 'a JSON object in the body has the same key twice';
    // [body, code, what the client is told, what the decision event records]
    const cases: [string, string, string, string][] = [
      [nested(9), 'BODY_LIMIT_EXCEEDED', DEPTH, 'JSON nesting deeper than 8'],
      [`{"a":${nested(8)}}`, 'BODY_LIMIT_EXCEEDED', DEPTH, 'JSON nesting deeper than 8'],
      [manyKeys(51), 'BODY_LIMIT_EXCEEDED', KEYS, 'JSON body has more than 50 keys'],
      ['{"user":{"__proto__":{"isAdmin":true}}}', 'BODY_FORBIDDEN_KEY', PROTO, 'JSON key __proto__ is not allowed'],
      ['{"\\u005f_proto__":{"isAdmin":true}}', 'BODY_FORBIDDEN_KEY', PROTO, 'JSON key __proto__ is not allowed'],
      ['{"constructor":{"prototype":{"isAdmin":true}}}', 'BODY_FORBIDDEN_KEY', PROTO, 'JSON key constructor.prototype is not allowed'],
      // The schema (JSON.parse) would see role "user", a first-wins parser in the service "admin".
      ['{"name":"a","role":"admin","role":"user"}', 'BODY_DUPLICATE_KEY', DUP, 'a JSON object has the key "role" twice'],
      ['{"name":"a","role":"admin","\\u0072ole":"user"}', 'BODY_DUPLICATE_KEY', DUP, 'a JSON object has the key "role" twice'],
      ['{"name":"a","<b>":1,"<b>":2}', 'BODY_DUPLICATE_KEY', DUP, 'a JSON object has the same key twice'],
    ];
    for (const [body, code, detail, reason] of cases) {
      const r = await post(path, body, 'application/json', method);
      expect([r.status, r.json?.['code'], r.json?.['detail']]).toEqual([400, code, detail]);
      expect((await decisionOf(r))?.detail).toBe(reason);
    }
    // Fine bodies (a "constructor" string, a "__proto__" value, one key name in different objects) still pass.
    const fineBody = '{"constructor":"Ferrari","note":"__proto__","deep":[[[[[[1]]]]]],"name":"n","tags":[{"name":"x"},{"name":"y"}]}';
    const fine = await post(path, fineBody, 'application/json', method);
    expect(fine.status).toBe(200);
    const seen = h.upstream.requests.filter((r) => r.url === path);
    expect(seen.length).toBe(n + 1);
    expect(seen.at(-1)?.body).toBe(fineBody);
  });

  it('refuses content types a route does not allow', async () => {
    const t = await post('/json/x', 'hello', 'text/plain');
    expect(t.status).toBe(415);
    expect(t.json).toMatchObject({ code: 'CONTENT_TYPE_NOT_ALLOWED', detail: 'the content type is not accepted here; accepted: application/json, application/*+json' });
    expect(await decisionOf(t)).toMatchObject({ rule: 'json-in', detail: 'content type text/plain is not allowed here; allowed: application/json, application/*+json' });
    expect((await post('/json/x', '{}', 'application/problem+json')).status).toBe(200);
    expect((await post('/upload/x', '{}', 'application/json')).status).toBe(415);
    expect((await post('/upload/x', 'raw', 'application/octet-stream; charset=binary')).status).toBe(200);
  });

  it('refuses over-long URLs and too many headers', async () => {
    const c = await h.client(PEER);
    const long = await send(c, `${h.base}/q?${'a'.repeat(300)}`);
    expect(long.status).toBe(414);
    expect(long.json).toMatchObject({ code: 'URL_TOO_LONG' });
    const headers = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`x-h${i}`, '1']));
    const many = await send(c, `${h.base}/q`, { headers });
    expect(many.status).toBe(431);
    expect(many.json).toMatchObject({ code: 'HEADERS_TOO_LARGE', detail: 'the request has more header fields or header bytes than this service accepts' });
    expect((await decisionOf(many))?.detail).toMatch(/header fields; the limit is 30$/);
    expect((await decisionOf(long))?.detail).toMatch(/^request target is \d+ bytes; the limit is 256$/);
  });

  it('dry-runs a limits rule: breaches are recorded as would_deny, the request goes through', async () => {
    const r = await post('/trial/x', '[[[["way more than sixteen bytes"]]]]');
    expect(r.status).toBe(200);
    await until(() => h.decisions.some((d) => d.request.path === '/trial/x'));
    const d = h.decisions.find((x) => x.request.path === '/trial/x');
    expect(d).toMatchObject({ verdict: 'allow', code: 'ALLOWED' });
    // Every breach is recorded, not only the first: the size, then the nesting (depth 4 > 2).
    expect(d?.wouldDeny).toEqual([
      { stage: 'validation', code: 'BODY_TOO_LARGE', rule: 'trial' },
      { stage: 'validation', code: 'BODY_LIMIT_EXCEEDED', rule: 'trial' },
    ]);
    expect(h.upstream.requests.find((x) => x.url === '/trial/x')?.body).toBe('[[[["way more than sixteen bytes"]]]]');
    // A body read for a schema that breaks a dry-run limit is still forwarded whole.
    const p = await post('/trial/profile', '[[[1]]]', 'application/json', 'PUT');
    expect(p.status).toBe(200);
    expect(h.upstream.requests.find((x) => x.url === '/trial/profile')?.body).toBe('[[[1]]]');
    await until(() => h.decisions.some((x) => x.request.path === '/trial/profile'));
    expect(h.decisions.find((x) => x.request.path === '/trial/profile')?.wouldDeny).toEqual([{ stage: 'validation', code: 'BODY_LIMIT_EXCEEDED', rule: 'trial' }]);
  });

  it('cuts off a slowloris client that never finishes its headers', async () => {
    const conn = await rawConnect(h, PEER);
    await conn.write('GET /slow HTTP/1.1\r\nHost: localhost\r\n');
    let lines = 0;
    // Keep trickling header lines (a slowloris never stops); the sidecar must close first.
    while (lines < 400 && (await conn.write(`X-Pad-${lines}: ${'z'.repeat(4)}\r\n`))) {
      lines++;
      await pause(50);
    }
    await conn.closed;
    expect(lines).toBeLessThan(400);
    expect(conn.received()).toMatch(/^HTTP\/1\.1 408 /);
    await until(() => h.decisions.some((d) => d.code === 'REQUEST_TIMEOUT' && d.decidedBy === 'request'));
    expect(h.upstream.requests.some((r) => r.url === '/slow')).toBe(false);
  });

  it('cuts off a body trickled byte by byte, with one decision for the request', async () => {
    const before = h.decisions.length;
    const conn = await rawConnect(h, PEER);
    await conn.write('POST /upload/trickle HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\nContent-Length: 2000\r\n\r\n');
    let bytes = 0;
    while (bytes < 2000 && (await conn.write('b'))) {
      bytes++;
      await pause(20);
    }
    await conn.closed;
    expect(bytes).toBeLessThan(2000);
    expect(h.upstream.requests.some((r) => r.url === '/upload/trickle')).toBe(false);
    await until(() => h.decisions.length > before);
    await pause(100);
    const mine = h.decisions.slice(before);
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ code: 'REQUEST_TIMEOUT', decidedBy: 'request', request: { path: '/upload/trickle' }, response: { status: 408 } });
  });
});
