/**
 * Requests that the sidecar and the service behind it could read differently
 * (spec.headers), sent as raw request lines over real mTLS to a real sidecar:
 * duplicate singleton headers, method-override and path-override headers.
 * Refused by default (400, stable code, never forwarded); normalized when the
 * policy says so, and then the service receives exactly the reading judged.
 */
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CODES } from '../../src/errors/codes.ts';
import { startHarness, until, type Harness } from '../support/harness.ts';

const PEER = 'spiffe://test.local/ns/shop/sa/web';

interface RawReply {
  readonly status: number;
  readonly json: Record<string, unknown> | null;
  readonly raw: string;
}

/** Sends the request head (and body) byte for byte: no client library merges or drops a header. */
async function raw(h: Harness, head: string, body = ''): Promise<RawReply> {
  const pem = await h.pki.client(PEER);
  const out = await new Promise<string>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: h.sidecar.tlsPort, ca: h.pki.ca.cert, cert: pem.cert, key: pem.key, servername: 'localhost' }, () => {
      s.write(`${head.replace(/\n/g, '\r\n')}Connection: close\r\n\r\n${body}`);
    });
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    s.on('close', () => resolve(text));
    s.on('error', reject);
  });
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 0);
  const rest = out.slice(out.indexOf('\r\n\r\n') + 4);
  let json: Record<string, unknown> | null = null;
  try {
    json = JSON.parse(rest.slice(rest.indexOf('{'))) as Record<string, unknown>;
  } catch {
    json = null;
  }
  return { status, json, raw: out };
}

/** The decision of this request: by the problem body's request_id, or an allowed answer's x-request-id. */
async function decisionOf(h: Harness, r: RawReply) {
  const id = r.json?.['request_id'] ?? /\r\nx-request-id: ([^\r]+)\r\n/i.exec(r.raw)?.[1];
  expect(id).toBeTruthy();
  await until(() => h.decisions.some((d) => d.requestId === id));
  return h.decisions.find((d) => d.requestId === id)!;
}

const RULES = `
  authorization:
    rules:
      - id: no-deletes-of-items
        effect: deny
        methods: [DELETE]
        paths: ["/items/**"]
      - id: no-admin
        effect: deny
        paths: ["/admin/**"]
      - id: open
        paths: ["/**"]
        public: true
`;

describe('ambiguous requests, default policy: refused', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(`
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: ambiguity-default, version: "1" }
spec:
  headers:
    duplicates: { singletons: [x-tenant-id] }
${RULES}`);
  });
  afterAll(async () => {
    await h?.close();
  });

  it.each([
    ['Authorization', 'GET /items/1 HTTP/1.1\nHost: localhost\nAuthorization: Bearer aaa\nAuthorization: Bearer bbb\n', 'authorization'],
    ['Host', 'GET /items/1 HTTP/1.1\nHost: localhost\nHost: admin.internal\n', 'host'],
    ['Content-Type', 'POST /items/1 HTTP/1.1\nHost: localhost\nContent-Type: application/json\nContent-Type: text/plain\nContent-Length: 2\n', 'content-type'],
    ['Origin (mixed case)', 'GET /items/1 HTTP/1.1\nHost: localhost\norigin: https://a.example\nORIGIN: https://b.example\n', 'origin'],
    ['a policy singleton', 'GET /items/1 HTTP/1.1\nHost: localhost\nX-Tenant-Id: acme\nX-Tenant-Id: globex\n', 'x-tenant-id'],
  ])('a duplicate %s header: 400 HEADER_DUPLICATE, never forwarded', async (_what, head, name) => {
    const before = h.upstream.requests.length;
    const r = await raw(h, head, head.startsWith('POST') ? '{}' : '');
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ code: 'HEADER_DUPLICATE', title: CODES.HEADER_DUPLICATE.title, detail: 'a header that must appear at most once was sent more than once' });
    const d = await decisionOf(h, r);
    expect(d).toMatchObject({ verdict: 'deny', decidedBy: 'request', code: 'HEADER_DUPLICATE', detail: `header ${name} sent 2 times (spec.headers.duplicates.action: refuse)` });
    expect(d.stages).toEqual([]);
    expect(h.upstream.requests.length).toBe(before);
  });

  it.each([
    ['Content-Length', 'Content-Length: 2\nContent-Length: 2\n', '{}'],
    ['Transfer-Encoding', 'Transfer-Encoding: chunked\nTransfer-Encoding: chunked\n', '2\r\n{}\r\n0\r\n\r\n'],
  ])('two %s headers never reach the service either (Node refuses them first, or the check does)', async (_what, framing, body) => {
    const before = h.upstream.requests.length;
    const r = await raw(h, `POST /items/1 HTTP/1.1\nHost: localhost\nContent-Type: application/json\n${framing}`, body);
    expect(r.status).toBe(400);
    expect(['HEADER_DUPLICATE', 'REQUEST_MALFORMED']).toContain(r.json?.['code']);
    expect(h.upstream.requests.length).toBe(before);
  });

  it('an absolute-form target whose authority differs from Host is refused (400 PATH_INVALID): one host, one path', async () => {
    const before = h.upstream.requests.length;
    const r = await raw(h, 'GET http://admin.internal/admin/users HTTP/1.1\nHost: localhost\n');
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ code: 'PATH_INVALID' });
    expect(h.upstream.requests.length).toBe(before);
  });

  it('a header that may be repeated (Accept) is fine', async () => {
    const r = await raw(h, 'GET /items/1 HTTP/1.1\nHost: localhost\nAccept: application/json\nAccept: text/plain\n');
    expect(r.status).toBe(200);
  });

  it.each(['X-HTTP-Method-Override', 'X-HTTP-Method', 'X-Method-Override'])('%s: 400 METHOD_OVERRIDE_NOT_ALLOWED, never forwarded', async (header) => {
    const before = h.upstream.requests.length;
    const r = await raw(h, `POST /items/1 HTTP/1.1\nHost: localhost\n${header}: DELETE\nContent-Length: 0\n`);
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ code: 'METHOD_OVERRIDE_NOT_ALLOWED' });
    const d = await decisionOf(h, r);
    expect(d).toMatchObject({ decidedBy: 'request', code: 'METHOD_OVERRIDE_NOT_ALLOWED' });
    expect(d.detail).toContain(`${header.toLowerCase()}: "DELETE" on POST`);
    expect(h.upstream.requests.length).toBe(before);
  });

  it.each(['X-Original-URL', 'X-Rewrite-URL'])('%s: 400 PATH_OVERRIDE_NOT_ALLOWED, never forwarded; the event has the path, not the query', async (header) => {
    const before = h.upstream.requests.length;
    const r = await raw(h, `GET /items/1 HTTP/1.1\nHost: localhost\n${header}: /admin/users?token=secret\n`);
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ code: 'PATH_OVERRIDE_NOT_ALLOWED', detail: 'path-override headers are not accepted; send the path itself' });
    expect(r.raw).not.toContain('/admin');
    const d = await decisionOf(h, r);
    expect(d.detail).toBe(`path-override header ${header.toLowerCase()}: "/admin/users" (spec.headers.pathOverride.action: refuse)`);
    expect(h.upstream.requests.length).toBe(before);
  });
});

describe('ambiguous requests, normalized by policy', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(`
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: ambiguity-normalize, version: "1" }
spec:
  headers:
    duplicates: { action: keepFirst, singletons: [x-tenant-id] }
    methodOverride: { action: apply, methods: [DELETE, PATCH] }
    pathOverride: { action: strip, headers: [x-forwarded-prefix] }
${RULES}`);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('keepFirst: the service receives the first copy only, the one judged', async () => {
    const r = await raw(h, 'GET /orders/1 HTTP/1.1\nHost: localhost\nX-Tenant-Id: acme\nX-Tenant-Id: globex\n');
    expect(r.status).toBe(200);
    expect(h.upstream.requests.at(-1)?.headers['x-tenant-id']).toBe('acme');
  });

  it('apply: the overriding method is the one authorized (a DELETE the policy denies stays denied)', async () => {
    const before = h.upstream.requests.length;
    const r = await raw(h, 'POST /items/1 HTTP/1.1\nHost: localhost\nX-HTTP-Method-Override: DELETE\nContent-Length: 0\n');
    expect(r.status).toBe(403);
    expect(r.json).toMatchObject({ code: 'AUTHZ_DENY_RULE' });
    const d = await decisionOf(h, r);
    expect(d).toMatchObject({ decidedBy: 'authz', rule: 'no-deletes-of-items', request: expect.objectContaining({ method: 'DELETE' }) });
    expect(h.upstream.requests.length).toBe(before);
  });

  it('apply: an allowed override reaches the service as the method itself, without the header', async () => {
    const r = await raw(h, 'POST /orders/1 HTTP/1.1\nHost: localhost\nX-HTTP-Method-Override: patch\nContent-Type: application/json\nContent-Length: 11\n', '{"qty": 2 }');
    expect(r.status).toBe(200);
    const up = h.upstream.requests.at(-1)!;
    expect([up.method, up.url, up.body]).toEqual(['PATCH', '/orders/1', '{"qty": 2 }']);
    expect(up.headers['x-http-method-override']).toBeUndefined();
    const d = await decisionOf(h, r);
    expect(d).toMatchObject({ verdict: 'allow', request: expect.objectContaining({ method: 'PATCH' }) });
  });

  it.each([
    ['on a GET', 'GET /orders/1 HTTP/1.1\nHost: localhost\nX-HTTP-Method-Override: DELETE\n', /on GET: only a POST may be overridden/],
    ['to a method not listed', 'POST /orders/1 HTTP/1.1\nHost: localhost\nX-HTTP-Method-Override: PUT\nContent-Length: 0\n', /not one of spec\.headers\.methodOverride\.methods \(DELETE, PATCH\)/],
    ['by headers that disagree', 'POST /orders/1 HTTP/1.1\nHost: localhost\nX-HTTP-Method-Override: DELETE\nX-Method-Override: PATCH\nContent-Length: 0\n', /the headers disagree/],
    ['by one header sent twice', 'POST /orders/1 HTTP/1.1\nHost: localhost\nX-HTTP-Method: DELETE\nX-HTTP-Method: PATCH\nContent-Length: 0\n', /not one of/],
  ])('apply: an override %s is refused', async (_what, head, reason) => {
    const before = h.upstream.requests.length;
    const r = await raw(h, head);
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ code: 'METHOD_OVERRIDE_NOT_ALLOWED' });
    expect((await decisionOf(h, r)).detail).toMatch(reason);
    expect(h.upstream.requests.length).toBe(before);
  });

  it('strip: path-override headers are removed, the path judged is the path forwarded', async () => {
    const r = await raw(h, 'GET /orders/1 HTTP/1.1\nHost: localhost\nX-Original-URL: /admin/users\nX-Rewrite-URL: /admin/users\nX-Forwarded-Prefix: /admin\n');
    expect(r.status).toBe(200);
    const up = h.upstream.requests.at(-1)!;
    expect(up.url).toBe('/orders/1');
    for (const name of ['x-original-url', 'x-rewrite-url', 'x-forwarded-prefix']) expect(up.headers[name]).toBeUndefined();
  });
});

describe('method override: strip', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(`
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: ambiguity-strip, version: "1" }
spec:
  headers:
    methodOverride: { action: strip }
${RULES}`);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('the service gets the POST that was judged, without the override headers', async () => {
    const r = await raw(h, 'POST /items/1 HTTP/1.1\nHost: localhost\nX-HTTP-Method-Override: DELETE\nX-Method-Override: DELETE\nContent-Length: 0\n');
    expect(r.status).toBe(200);
    const up = h.upstream.requests.at(-1)!;
    expect(up.method).toBe('POST');
    expect(up.headers['x-http-method-override']).toBeUndefined();
    expect(up.headers['x-method-override']).toBeUndefined();
  });
});
