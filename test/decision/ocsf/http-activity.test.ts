/**
 * Real decision records from the real sidecar (mTLS listener, plain listener,
 * real upstream), encoded to OCSF HTTP Activity: every event validates
 * against our JSON Schema and against the official OCSF 1.8.0 definition,
 * maps each field as docs/events.md says, carries no secret, and reads back
 * to the exact record.
 */
import { connect } from 'node:tls';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeDecision, encodeDecision, encodeDecisionJson } from '../../../src/decision/encode.ts';
import { standardRecord } from '../../../src/decision/ocsf/standard.ts';
import { toOcsfHttpActivity, type OcsfHttpActivity } from '../../../src/decision/ocsf/http-activity.ts';
import type { DecisionRecord } from '../../../src/decision/record.ts';
import { validateOcsf } from '../../../src/decision/ocsf/validate.ts';
import { send, startHarness, until, type Harness } from '../../support/harness.ts';
import { ISSUER, startIssuer, type Issuer } from './issuer.ts';
import { checkEvent, loadOcsf, type OcsfSource } from './ocsf-source.ts';
import { SYNTHETIC } from './records.ts';


const policy = (jwksUri: string) => `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: ocsf-test, version: "7" }
spec:
  listener: { allowPlaintext: true }
  authentication:
    jwt:
      issuers:
        - { issuer: "${ISSUER}", jwksUri: "${jwksUri}", audiences: [orders] }
    requirements:
      - { id: jwt-orders, paths: ["/jwt/**"], require: { allOf: [mtls, jwt] } }
      - { id: plain, paths: ["/orders/plain"], require: none }
    defaultRequire: mtls
  authorization:
    rules:
      - id: orders-public
        methods: [GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS]
        paths: ["/orders", "/orders/{id}"]
        public: true
      - id: jwt-orders
        methods: [GET]
        paths: ["/jwt/tenants/{tenantId}/orders"]
        authenticated: true
        when: [{ claim: tenant, equalsParam: tenantId }]
      - id: admin-deny
        effect: deny
        paths: [/admin/**]
      - id: reports-audit
        effect: deny
        audit: true
        paths: [/reports/**]
`;

const SECRETS = ['SECRET-QUERY-TOKEN', 'SECRET-BEARER-TOKEN', 'SECRET-COOKIE', 'SECRET-BASIC'];

/** What the wire carries: the event as JSON, parsed back. */
function wire(record: DecisionRecord): OcsfHttpActivity {
  return JSON.parse(JSON.stringify(encodeDecision(record))) as OcsfHttpActivity;
}

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

describe('OCSF HTTP Activity from real sidecar decisions', () => {
  let h: Harness;
  let ocsf: OcsfSource;
  let issuer: Issuer;
  const tokens: string[] = [];
  /** The one decision for this path (and code, when a path was requested twice). */
  const rec = (path: string, code?: string): DecisionRecord => {
    const found = h.decisions.filter((d) => d.request.path === path && (code === undefined || d.code === code));
    expect(found, `${path} ${code ?? ''}`).toHaveLength(1);
    return found[0] as DecisionRecord;
  };

  beforeAll(async () => {
    ocsf = loadOcsf();
    issuer = await startIssuer();
    h = await startHarness(policy(issuer.jwksUri));
    const a = await h.client('spiffe://test.local/ns/shop/sa/web');
    const secretHeaders = { authorization: `Bearer ${SECRETS[1]}`, cookie: `sid=${SECRETS[2]}`, 'user-agent': 'ocsf-test/1.0', 'x-forwarded-for': '203.0.113.7, 10.0.0.1' };
    const expectStatus = async (p: Promise<{ status: number }>, status: number) => expect((await p).status).toBe(status);
    let n = 0;
    await expectStatus(send(a, `${h.base}/orders/42?access_token=${SECRETS[0]}&x=1`, { headers: secretHeaders }), 200);
    n++;
    await expectStatus(send(a, `${h.base}/orders`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Basic ${SECRETS[3]}` }, body: '{"item":"book","qty":2}' }), 200);
    n++;
    for (const method of ['HEAD', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
      await expectStatus(send(a, `${h.base}/orders/${method.toLowerCase()}`, { method }), 200);
      n++;
    }
    await expectStatus(send(a, `${h.base}/admin/users`), 403);
    await expectStatus(send(a, `${h.base}/nowhere`), 403);
    await expectStatus(send(a, `${h.base}/reports/q1`), 200); // audit-mode deny: would_deny, forwarded
    await expectStatus(send(a, `${h.base}/a/%2F/b`), 400);
    n += 4;
    // JWT on top of mTLS: a real token, verified against the real JWKS.
    const now = Math.floor(Date.now() / 1000);
    const good = await issuer.sign({ sub: 'alice', tenant: 't-17', scope: 'orders:read profile', groups: ['buyers'], client_id: 'web', jti: 'jti-0001' }, now + 600);
    const expired = await issuer.sign({ sub: 'alice', tenant: 't-17' }, now - 3600);
    const none = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${Buffer.from(JSON.stringify({ sub: 'mallory', iss: ISSUER, aud: 'orders', tenant: 't-17', exp: now + 600 })).toString('base64url')}.`;
    tokens.push(good, expired, none);
    await expectStatus(send(a, `${h.base}/jwt/tenants/t-17/orders`, { headers: { authorization: `Bearer ${good}` } }), 200);
    await expectStatus(send(a, `${h.base}/jwt/tenants/t-99/orders`, { headers: { authorization: `Bearer ${good}` } }), 403);
    await expectStatus(send(a, `${h.base}/jwt/tenants/t-17/orders?k=1`, { headers: { authorization: `Bearer ${expired}` } }), 401);
    await expectStatus(send(a, `${h.base}/jwt/tenants/t-18/orders`, { headers: { authorization: `Bearer ${none}` } }), 401);
    await expectStatus(send(a, `${h.base}/jwt/tenants/t-19/orders`), 401);
    n += 5;
    const noSpiffe = await h.client(null);
    await expectStatus(send(noSpiffe, `${h.base}/orders/nospiffe`), 200);
    n++;
    // Plain-HTTP listener: no TLS facts, scheme http.
    const plain = await request(`http://127.0.0.1:${h.sidecar.plaintextPort}/orders/plain`);
    await plain.body.text();
    expect(plain.statusCode).toBe(200);
    n++;
    // The upstream breaks the connection mid-response.
    h.upstream.handler = (_req, _body, res) => res.socket?.destroy();
    await expectStatus(send(a, `${h.base}/orders/broken`), 502);
    n++;
    // Garbage that is not HTTP, over an authenticated TLS connection.
    const pem = await h.pki.client('spiffe://test.local/ns/shop/sa/fuzzer');
    await new Promise<void>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: h.sidecar.tlsPort, ca: h.pki.ca.cert, cert: pem.cert, key: pem.key, servername: 'localhost' }, () => s.end('NOT HTTP AT ALL\r\n\r\n'));
      s.on('data', () => undefined);
      s.on('close', () => resolve());
      s.on('error', reject);
    });
    n++;
    await until(() => h.decisions.length >= n);
  });

  afterAll(async () => {
    await h?.close();
    await issuer?.close();
  });

  it('every real decision validates against our JSON Schema and the official OCSF 1.8.0 definition', () => {
    expect(h.decisions.length).toBeGreaterThanOrEqual(15);
    for (const d of h.decisions) {
      const e = wire(d);
      const v = validateOcsf('http-activity', e);
      expect(v.errors, `${d.code} ${d.request.path}`).toEqual([]);
      expect(checkEvent(ocsf, 'http_activity', e as unknown as Record<string, unknown>), `${d.code} ${d.request.path}`).toEqual([]);
    }
  });

  it('the standard detail level (the default on the wire): every real decision validates too, reads back to standardRecord(), and is smaller', () => {
    let std = 0;
    let full = 0;
    for (const d of h.decisions) {
      const text = encodeDecisionJson(d, 'standard');
      const e = JSON.parse(text) as Record<string, unknown>;
      expect(validateOcsf('http-activity', e).errors, `${d.code} ${d.request.path}`).toEqual([]);
      expect(checkEvent(ocsf, 'http_activity', e), `${d.code} ${d.request.path}`).toEqual([]);
      expect(e['observables']).toBeUndefined();
      expect(decodeDecision(e)).toStrictEqual(clone(standardRecord(d)));
      std += text.length;
      full += encodeDecisionJson(d).length;
    }
    expect(std).toBeLessThan(full * 0.7);
  });

  it('reads every real decision back to the exact record', () => {
    for (const d of h.decisions) expect(decodeDecision(wire(d))).toStrictEqual(clone(d));
  });

  it('never carries the query string, a token, a cookie or an Authorization value', () => {
    const text = h.decisions.map((d) => `${JSON.stringify(encodeDecision(d))}\n${encodeDecisionJson(d, 'standard')}`).join('\n');
    for (const s of SECRETS) expect(text).not.toContain(s);
    // Neither a whole JWT nor its signature (the part that makes it a credential).
    for (const t of tokens) {
      expect(text).not.toContain(t);
      const sig = t.split('.')[2] as string;
      if (sig) expect(text).not.toContain(sig);
    }
    expect(text).not.toContain('access_token');
    expect(text).not.toMatch(/"[^"]*\?[^"]*x=1/);
  });

  it('maps an allowed request: activity from the method, Allowed/Allowed, Success, url without query, identity-free TLS facts', () => {
    const d = rec('/orders/42');
    const e = wire(d);
    expect(e).toMatchObject({
      class_uid: 4002,
      category_uid: 4,
      activity_id: 3,
      activity_name: 'Get',
      type_uid: 400203,
      type_name: 'HTTP Activity: Get',
      severity_id: 1,
      status_id: 1,
      status: 'Success',
      status_code: 'ALLOWED',
      action_id: 1,
      action: 'Allowed',
      disposition_id: 1,
      disposition: 'Allowed',
      is_alert: false,
      app_protocol_name: 'https',
      policy: { name: 'ocsf-test', version: '7', uid: d.policy?.hash, is_applied: true },
      firewall_rule: { uid: 'orders-public', name: 'orders-public' },
      metadata: { version: '1.8.0', uid: d.id, correlation_uid: d.requestId, log_name: 'palisade.decisions', product: { name: 'Palisade', feature: { name: 'sidecar' } } },
      http_request: { uid: d.requestId, http_method: 'GET', user_agent: 'ocsf-test/1.0', x_forwarded_for: ['203.0.113.7', '10.0.0.1'], version: '1.1', url: { scheme: 'https', path: '/orders/42', hostname: '127.0.0.1', port: h.sidecar.tlsPort } },
      http_response: { code: 200 },
      src_endpoint: { ip: d.client.ip, port: d.client.port },
      dst_endpoint: { ip: d.server.ip, port: h.sidecar.tlsPort },
      unmapped: { palisade: { verdict: 'allow', stage: 'forward', code: 'ALLOWED', rule: 'orders-public', route: '/orders/{id}', params: { id: '42' } } },
    });
    expect(e.http_request.url?.url_string).toBe(`https://127.0.0.1:${h.sidecar.tlsPort}/orders/42`);
    expect(e.time).toBe(d.time);
    expect(e.end_time - e.start_time).toBe(e.duration);
    expect(e.http_response.length).toBeGreaterThan(0);
    expect(e.unmapped.palisade.stages.map((s) => s.stage)).toEqual(expect.arrayContaining(['authn', 'authz']));
    // The mTLS identity (a SPIFFE workload) is the actor: host profile declared.
    expect(e.actor).toEqual({ user: { uid: 'spiffe://test.local/ns/shop/sa/web', name: 'spiffe://test.local/ns/shop/sa/web', type_id: 4, type: 'Service' } });
    expect(e.metadata.profiles).toEqual(['security_control', 'host']);
    expect(e.unmapped.palisade.identity).toEqual({ methods: ['mtls'], spiffe_id: 'spiffe://test.local/ns/shop/sa/web', scopes: [], claims: {} });
    expect(e.tls?.version).toMatch(/^1\.[23]$/);
    expect(e.tls?.certificate?.sans).toEqual([{ name: 'spiffe://test.local/ns/shop/sa/web', type: 'URI' }]);
    expect(e.tls?.certificate?.fingerprints?.[0]).toMatchObject({ algorithm_id: 3, algorithm: 'SHA-256' });
    expect(e.tls?.certificate?.fingerprints?.[0]?.value).toMatch(/^[0-9a-f]{64}$/);
    expect(e.tls?.certificate?.expiration_time).toBeGreaterThan(e.tls?.certificate?.created_time ?? Infinity);
    const obs = e.observables?.map((o) => [o.type_id, o.name, o.value]);
    expect(obs).toEqual(
      expect.arrayContaining([
        [2, 'src_endpoint.ip', d.client.ip],
        [2, 'http_request.x_forwarded_for', '203.0.113.7'],
        [6, 'http_request.url.url_string', `https://127.0.0.1:${h.sidecar.tlsPort}/orders/42`],
        [16, 'http_request.user_agent', 'ocsf-test/1.0'],
      ]),
    );
  });

  it('maps each method to its activity and records the body length and content type', () => {
    const ids = Object.fromEntries(['head', 'put', 'patch', 'delete', 'options'].map((m) => [m, wire(rec(`/orders/${m}`)).activity_id]));
    expect(ids).toEqual({ head: 4, put: 7, patch: 9, delete: 2, options: 5 });
    const post = wire(rec('/orders'));
    expect(post).toMatchObject({ activity_id: 6, type_uid: 400206, http_request: { http_method: 'POST', body_length: 23, http_headers: [{ name: 'Content-Type', value: 'application/json' }] } });
  });

  it('maps denies: Denied with the code\'s disposition, Failure, the deciding rule', () => {
    expect(wire(rec('/admin/users'))).toMatchObject({
      action_id: 2,
      disposition_id: 2,
      disposition: 'Blocked',
      status_id: 2,
      status: 'Failure',
      status_code: 'AUTHZ_DENY_RULE',
      severity_id: 2,
      is_alert: false,
      firewall_rule: { uid: 'admin-deny' },
      http_response: { code: 403 },
      unmapped: { palisade: { verdict: 'deny', stage: 'authz', code: 'AUTHZ_DENY_RULE', rule: 'admin-deny' } },
    });
    const none = wire(rec('/nowhere'));
    expect(none).toMatchObject({ action_id: 2, disposition_id: 2, status_code: 'AUTHZ_NO_MATCHING_RULE' });
    expect(none.firewall_rule).toBeUndefined();
    expect(wire(rec('/a/%2F/b'))).toMatchObject({ action_id: 2, disposition_id: 25, disposition: 'Rejected', status_code: 'PATH_INVALID', unmapped: { palisade: { stage: 'request' } } });
  });

  it('maps a real JWT identity: user, groups, client id, issuer, jti and expiry; scopes and claims in unmapped for replay', () => {
    const d = rec('/jwt/tenants/t-17/orders', 'ALLOWED');
    const e = wire(d);
    expect(e.actor).toEqual({
      user: { uid: 'alice', name: 'alice', type_id: 1, type: 'User', groups: [{ name: 'buyers' }] },
      app_uid: 'web',
      idp: { name: ISSUER, issuer: ISSUER },
      session: { uid: 'jti-0001', issuer: ISSUER, expiration_time: (d.identity?.expiresAt ?? 0) * 1000 },
    });
    expect(e.unmapped.palisade.identity).toMatchObject({ methods: ['mtls', 'jwt'], spiffe_id: 'spiffe://test.local/ns/shop/sa/web', scopes: ['orders:read', 'profile'], claims: { sub: 'alice', tenant: 't-17' } });
    expect(e).toMatchObject({ firewall_rule: { uid: 'jwt-orders' }, unmapped: { palisade: { route: '/jwt/tenants/{tenantId}/orders', params: { tenantId: 't-17' } } } });
    expect(wire(rec('/jwt/tenants/t-99/orders'))).toMatchObject({ action_id: 2, disposition_id: 2, status_code: 'AUTHZ_CONDITION_FAILED', firewall_rule: { uid: 'jwt-orders' } });
  });

  it('maps authentication failures to Unauthorized; an alg=none token is an alert', () => {
    expect(wire(rec('/jwt/tenants/t-17/orders', 'AUTHN_TOKEN_EXPIRED'))).toMatchObject({ action_id: 2, disposition_id: 26, disposition: 'Unauthorized', status_id: 2, severity_id: 2, is_alert: false, http_response: { code: 401 }, unmapped: { palisade: { stage: 'authn' } } });
    expect(wire(rec('/jwt/tenants/t-19/orders'))).toMatchObject({ disposition_id: 26, status_code: 'AUTHN_REQUIRED', is_alert: false });
    expect(wire(rec('/jwt/tenants/t-18/orders'))).toMatchObject({ disposition_id: 26, status_code: 'AUTHN_ALGORITHM_FORBIDDEN', is_alert: true, severity_id: 3, severity: 'Medium' });
  });

  it('keeps audit-mode would_deny in unmapped and raises severity to Low on the allowed request', () => {
    const e = wire(rec('/reports/q1'));
    expect(e).toMatchObject({ action_id: 1, disposition_id: 1, status_id: 1, severity_id: 2, severity: 'Low' });
    expect(e.unmapped.palisade.would_deny).toEqual([{ stage: 'authz', code: 'AUTHZ_DENY_RULE', rule: 'reports-audit' }]);
    expect(e.unmapped.palisade.stages.filter((s) => s.stage === 'authz')).toEqual([expect.objectContaining({ outcome: 'would_deny' })]);
  });

  it('an upstream failure is Allowed by the policy, disposition Error, status Failure', () => {
    const e = wire(rec('/orders/broken'));
    expect(e).toMatchObject({ action_id: 1, disposition_id: 27, disposition: 'Error', status_id: 2, http_response: { code: 502 }, unmapped: { palisade: { stage: 'upstream' } } });
    expect(e.status_code).toMatch(/^UPSTREAM_/);
  });

  it('an unparseable request still yields a valid event: activity Unknown, no url', () => {
    const e = wire(rec('', 'REQUEST_MALFORMED'));
    expect(e).toMatchObject({ activity_id: 0, activity_name: 'Unknown', type_uid: 400200, disposition_id: 25, http_response: { code: 400 } });
    expect(e.http_request.url).toBeUndefined();
    expect(e.http_request.http_method).toBeUndefined();
  });

  it('plain HTTP has no tls and scheme http; a certificate without a SPIFFE ID has no SAN', () => {
    const plain = wire(rec('/orders/plain'));
    expect(plain.tls).toBeUndefined();
    expect(plain.actor).toBeUndefined();
    expect(plain.metadata.profiles).toEqual(['security_control']);
    expect(plain).toMatchObject({ app_protocol_name: 'http', http_request: { url: { scheme: 'http' } } });
    const noSpiffe = wire(rec('/orders/nospiffe'));
    expect(noSpiffe.tls?.certificate?.sans).toBeUndefined();
    expect(noSpiffe.tls?.certificate?.subject).toContain('client-without-spiffe');
    // Identified by its certificate subject: not known to be a workload or a person.
    expect(noSpiffe.actor?.user).toMatchObject({ uid: 'CN=client-without-spiffe', type_id: 0, type: 'Unknown' });
  });
});

describe('OCSF HTTP Activity from records the core policy cannot produce yet', () => {
  const ocsf = loadOcsf();

  it.each(SYNTHETIC)('%s: valid against both schemas and read back exactly', (_name, make) => {
    const r = make();
    const e = wire(r);
    expect(validateOcsf('http-activity', e).errors).toEqual([]);
    expect(checkEvent(ocsf, 'http_activity', e as unknown as Record<string, unknown>)).toEqual([]);
    expect(decodeDecision(e)).toStrictEqual(clone(r));
  });

  it('maps a JWT identity to actor (host profile), the issuer to idp, the jti to session, a trace id to trace (trace profile)', () => {
    const r = SYNTHETIC[0]![1]();
    const e = wire(r);
    expect(e.metadata.profiles).toEqual(['security_control', 'host', 'trace']);
    expect(e.actor).toEqual({
      user: { uid: 'user-8842', name: 'user-8842', type_id: 1, type: 'User', groups: [{ name: 'customers' }, { name: 'beta' }] },
      app_uid: 'web-frontend',
      idp: { name: 'https://idp.example.com/', issuer: 'https://idp.example.com/' },
      session: { uid: 'a1b2c3d4-jti', issuer: 'https://idp.example.com/', expiration_time: (r.identity?.expiresAt ?? 0) * 1000 },
    });
    expect(e.trace).toEqual({ uid: r.traceId });
    expect(e.unmapped.palisade.identity).toEqual({ methods: ['mtls', 'jwt'], spiffe_id: 'spiffe://prod.example/ns/shop/sa/web', scopes: ['orders:read', 'profile'], claims: r.identity?.claims });
    expect(e.observables).toContainEqual({ name: 'actor.user.name', type_id: 4, type: 'User Name', value: 'user-8842' });
    expect(e.tls).toMatchObject({ version: '1.3', certificate: { created_time: Date.UTC(2025, 4, 31), expiration_time: Date.UTC(2025, 5, 1) } });
  });

  it('a block-list hit is an alert: Denied/Blocked, Medium, is_alert, a service principal', () => {
    const e = wire(SYNTHETIC[1]![1]());
    expect(e).toMatchObject({ action_id: 2, disposition_id: 2, severity_id: 3, severity: 'Medium', is_alert: true, status_code: 'BLOCKED', firewall_rule: { uid: 'detector:burst:9f1c' } });
    expect(e.actor?.user).toMatchObject({ uid: 'batch-exporter', type_id: 4, type: 'Service' });
    expect(e.metadata.profiles).toEqual(['security_control', 'host']);
  });

  it('values that do not fit OCSF types are left out of the mapped attributes and kept exactly in unmapped.palisade.exact', () => {
    const r = SYNTHETIC[2]![1]();
    const e = wire(r);
    expect(e.src_endpoint).toBeUndefined();
    expect(e.http_request.x_forwarded_for).toEqual(['198.51.100.4']);
    expect(e).toMatchObject({ activity_id: 99, activity_name: 'PROPFIND', type_uid: 400299, type_name: 'HTTP Activity: Other' });
    expect(e.unmapped.palisade.exact).toEqual({
      'client.port': 4711,
      'client.forwardedFor': ['unknown', '198.51.100.4', '_hidden'],
      'request.host': 'Orders.Example:08443',
      'tls.peer.fingerprint256': 'not-a-fingerprint',
      'tls.peer.validFrom': '2025-05-31',
      'identity.expiresAt': 1748779200.5,
    });
    expect(e.actor?.session).toBeUndefined();
    const broken = wire(SYNTHETIC[4]![1]());
    expect(broken.dst_endpoint).toEqual({ svc_name: 'palisade' });
    expect(broken.unmapped.palisade.exact).toBeUndefined();
  });

  it('encodes deterministically (same record, same event)', () => {
    const r = SYNTHETIC[0]![1]();
    expect(JSON.stringify(toOcsfHttpActivity(r))).toBe(JSON.stringify(toOcsfHttpActivity(r)));
  });
});
