/**
 * Authentication (3002) events derived from real decisions of a sidecar with
 * mTLS trust domains and a real JWT issuer: successes and failures, each
 * valid against our JSON Schema and the official OCSF 1.8.0 definition.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toOcsfAuthentication, type OcsfAuthentication } from '../../../src/decision/ocsf/authentication.ts';
import type { DecisionRecord } from '../../../src/decision/record.ts';
import { validateOcsf } from '../../../src/decision/ocsf/validate.ts';
import { send, startHarness, until, type Harness } from '../../support/harness.ts';
import { startIssuer, type Issuer } from './issuer.ts';
import { checkEvent, loadOcsf } from './ocsf-source.ts';

const policy = (jwksUri: string) => `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: auth-events, version: "3" }
spec:
  authentication:
    mtls: { trustDomains: [test.local] }
    jwt:
      issuers:
        - { issuer: "https://idp.test/", jwksUri: "${jwksUri}", audiences: [orders] }
    requirements:
      - { id: jwt, paths: ["/jwt/**"], require: { allOf: [mtls, jwt] } }
    defaultRequire: mtls
  authorization:
    rules:
      - { id: all, paths: ["/**"], authenticated: true }
`;

describe('OCSF Authentication events from real decisions', () => {
  let h: Harness;
  let issuer: Issuer;
  let token = '';
  const ocsf = loadOcsf();
  const event = (path: string, code: string): OcsfAuthentication => {
    const d = h.decisions.find((x) => x.request.path === path && x.code === code) as DecisionRecord;
    expect(d, `${path} ${code}`).toBeDefined();
    return JSON.parse(JSON.stringify(toOcsfAuthentication(d))) as OcsfAuthentication;
  };

  beforeAll(async () => {
    issuer = await startIssuer();
    h = await startHarness(policy(issuer.jwksUri));
    const inside = await h.client('spiffe://test.local/ns/shop/sa/web');
    const outside = await h.client('spiffe://elsewhere.example/ns/x/sa/y');
    token = await issuer.sign({ sub: 'alice', jti: 'jti-42' }, Math.floor(Date.now() / 1000) + 600);
    expect((await send(inside, `${h.base}/orders/1`)).status).toBe(200);
    expect((await send(outside, `${h.base}/orders/1`)).status).toBe(403);
    expect((await send(inside, `${h.base}/jwt/me`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await send(inside, `${h.base}/jwt/me`)).status).toBe(401);
    expect((await send(inside, `${h.base}/a/%2F/b`)).status).toBe(400);
    await until(() => h.decisions.length >= 5);
  });

  afterAll(async () => {
    await h?.close();
    await issuer?.close();
  });

  it('every authentication attempt is one valid event; requests that never reached authn have none', () => {
    const events = h.decisions.map((d) => toOcsfAuthentication(d));
    expect(events.filter((e) => e !== null)).toHaveLength(4);
    expect(toOcsfAuthentication(h.decisions.find((d) => d.code === 'PATH_INVALID') as DecisionRecord)).toBeNull();
    for (const e of events) {
      if (!e) continue;
      const j = JSON.parse(JSON.stringify(e)) as Record<string, unknown>;
      expect(validateOcsf('authentication', j).errors).toEqual([]);
      expect(checkEvent(ocsf, 'authentication', j)).toEqual([]);
      expect(JSON.stringify(j)).not.toContain(token.split('.')[2]);
    }
  });

  it('an mTLS success: Logon, Success, protocol Other "mTLS", the workload as a Service user', () => {
    const e = event('/orders/1', 'ALLOWED');
    expect(e).toMatchObject({ class_uid: 3002, category_uid: 3, activity_id: 1, type_uid: 300201, status_id: 1, status: 'Success', severity_id: 1, auth_protocol_id: 99, auth_protocol: 'mTLS', logon_type_id: 3, is_remote: true, service: { name: 'auth-events', version: '3' }, user: { uid: 'spiffe://test.local/ns/shop/sa/web', type_id: 4, type: 'Service' }, metadata: { log_name: 'palisade.authentications', event_code: 'AUTHENTICATED' } });
    expect(e.certificate?.sans).toEqual([{ name: 'spiffe://test.local/ns/shop/sa/web', type: 'URI' }]);
    expect(e.status_code).toBeUndefined();
  });

  it('a peer outside the trust domains: Failure with the code, protocol mTLS', () => {
    const e = event('/orders/1', 'AUTHN_PEER_NOT_ALLOWED');
    expect(e).toMatchObject({ status_id: 2, status: 'Failure', status_code: 'AUTHN_PEER_NOT_ALLOWED', severity_id: 2, auth_protocol: 'mTLS', user: { name: 'unknown', type_id: 0 }, unmapped: { palisade: { methods: ['mtls'] } } });
  });

  it('a JWT on top of mTLS: OAUTH 2.0, the token subject, its jti as the session; a missing token is a failure of the workload', () => {
    const ok = event('/jwt/me', 'ALLOWED');
    expect(ok).toMatchObject({ status_id: 1, auth_protocol_id: 6, auth_protocol: 'OAUTH 2.0', user: { uid: 'alice', name: 'alice' }, session: { uid: 'jti-42', issuer: 'https://idp.test/' }, unmapped: { palisade: { methods: ['mtls', 'jwt'] } } });
    const missing = event('/jwt/me', 'AUTHN_REQUIRED');
    expect(missing).toMatchObject({ status_id: 2, status_code: 'AUTHN_REQUIRED', auth_protocol_id: 0, user: { uid: 'spiffe://test.local/ns/shop/sa/web' } });
  });

  it('links to the decision and de-duplicates like it: same uid for the same decision, never the decision\'s uid', () => {
    const d = h.decisions.find((x) => x.request.path === '/orders/1' && x.code === 'ALLOWED') as DecisionRecord;
    const a = toOcsfAuthentication(d);
    const b = toOcsfAuthentication(d);
    expect(a?.metadata.uid).toBe(b?.metadata.uid);
    expect(a?.metadata.uid).not.toBe(d.id);
    expect(a?.metadata.uid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a).toMatchObject({ metadata: { correlation_uid: d.requestId }, unmapped: { palisade: { decision_uid: d.id } } });
  });
});
