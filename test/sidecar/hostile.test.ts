/**
 * Hostile clients against the real sidecar over real mTLS: path tricks,
 * spoofed identity headers, request smuggling. Nothing may reach the upstream
 * as something a rule did not see.
 */
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest, send, startHarness, until, type Harness } from '../support/harness.ts';

const POLICY = `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: hostile, version: "1" }
spec:
  authorization:
    rules:
      - id: no-admin
        effect: deny
        paths: ["/admin/**"]
      - id: public-area
        paths: ["/public/**"]
        public: true
`;

describe('hostile requests', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(POLICY);
  });
  afterAll(async () => {
    await h?.close();
  });

  it.each([
    ['/public/../admin/users', 403, 'AUTHZ_DENY_RULE'],
    ['/public/%2e%2e/admin/users', 403, 'AUTHZ_DENY_RULE'],
    ['/public/%2E%2E/%61dmin/users', 403, 'AUTHZ_DENY_RULE'],
    ['/%61dmin/users', 403, 'AUTHZ_DENY_RULE'],
    ['//admin/users', 403, 'AUTHZ_DENY_RULE'],
    ['/ADMIN/users', 403, 'AUTHZ_DENY_RULE'],
    ['/Admin', 403, 'AUTHZ_DENY_RULE'],
    ['/public/%2561dmin', 400, 'PATH_INVALID'],
    ['/public/..%2Fadmin', 400, 'PATH_INVALID'],
    ['/public/..%5Cadmin', 400, 'PATH_INVALID'],
    ['/admin;x=1/users', 400, 'PATH_INVALID'],
    ['/public/x;jsessionid=1', 400, 'PATH_INVALID'],
    ['/public/%00', 400, 'PATH_INVALID'],
    ['/../admin', 400, 'PATH_INVALID'],
  ])('%s -> %d %s, never forwarded', async (path, status, code) => {
    const before = h.upstream.requests.length;
    const r = await rawRequest(h, path);
    expect(r.status).toBe(status);
    expect(JSON.parse(r.body.slice(r.body.indexOf('{')))['code']).toBe(code);
    expect(h.upstream.requests.length).toBe(before);
  });

  it('forwards the normalized path, so the upstream sees what the rule saw', async () => {
    const r = await rawRequest(h, '/public/a/./b//c/../%64oc?q=%2F1');
    expect(r.status).toBe(200);
    expect(h.upstream.requests.at(-1)?.url).toBe('/public/a/b/doc?q=%2F1');
  });

  it('replaces client-sent identity headers with the verified ones', async () => {
    const a = await h.client('spiffe://test.local/ns/real/sa/caller');
    const r = await send(a, `${h.base}/public/whoami`, {
      headers: {
        'x-forwarded-client-cert': 'URI=spiffe://test.local/ns/kube-system/sa/admin',
        'x-palisade-identity': 'admin',
        'x-palisade-spiffe-id': 'spiffe://test.local/ns/kube-system/sa/admin',
        'x-forwarded-for': '10.0.0.1',
        'x-request-id': 'forged',
      },
    });
    expect(r.status).toBe(200);
    const seen = h.upstream.requests.at(-1)!.headers;
    expect(seen['x-forwarded-client-cert']).toMatch(/URI=spiffe:\/\/test\.local\/ns\/real\/sa\/caller$/);
    expect(seen['x-forwarded-client-cert']).not.toMatch(/kube-system/);
    expect(seen['x-palisade-identity']).toBe('spiffe://test.local/ns/real/sa/caller');
    expect(seen['x-palisade-spiffe-id']).toBe('spiffe://test.local/ns/real/sa/caller');
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen['x-request-id']).not.toBe('forged');
    expect(seen['x-request-id']).toBe(r.headers['x-request-id']);
  });

  it('refuses CL+TE request smuggling with a 400 and one decision, forwarding nothing', async () => {
    const pem = await h.pki.client('spiffe://test.local/ns/x/sa/smuggler');
    const before = h.upstream.requests.length;
    const decisionsBefore = h.decisions.length;
    const raw = await new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: h.sidecar.tlsPort, ca: h.pki.ca.cert, cert: pem.cert, key: pem.key, servername: 'localhost' }, () => {
        s.write('POST /public/a HTTP/1.1\r\nHost: x\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin/users HTTP/1.1\r\nHost: x\r\n\r\n');
      });
      let out = '';
      s.on('data', (d: Buffer) => (out += d.toString()));
      s.on('end', () => resolve(out));
      s.on('close', () => resolve(out));
      s.on('error', reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400/);
    expect(raw).toMatch(/application\/problem\+json/);
    expect(raw).toMatch(/REQUEST_MALFORMED/);
    expect(raw).not.toMatch(/HTTP\/1\.1 200/);
    expect(h.upstream.requests.length).toBe(before);
    await until(() => h.decisions.length > decisionsBefore);
    expect(h.decisions.at(-1)).toMatchObject({ verdict: 'deny', code: 'REQUEST_MALFORMED', decidedBy: 'request' });
  });

  it('refuses a request with two Content-Length values', async () => {
    const pem = await h.pki.client('spiffe://test.local/ns/x/sa/smuggler');
    const raw = await new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: h.sidecar.tlsPort, ca: h.pki.ca.cert, cert: pem.cert, key: pem.key, servername: 'localhost' }, () => {
        s.write('POST /public/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 30\r\n\r\nhello');
      });
      let out = '';
      s.on('data', (d: Buffer) => (out += d.toString()));
      s.on('close', () => resolve(out));
      s.on('error', reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400/);
  });
});
