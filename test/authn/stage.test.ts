import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnsecuredJWT } from 'jose';
import type { Agent } from 'undici';
import { authnServices } from '../../src/authn/services.ts';
import { createLogger } from '../../src/log/logger.ts';
import { createServices } from '../../src/sidecar/compose.ts';
import { send, startHarness, until, type Harness } from '../support/harness.ts';
import { startIntrospectionServer, type IntrospectionServer } from './support/introspection-server.ts';
import { startJwksServer, type JwksServer } from './support/jwks-server.ts';
import { makeKey, signToken, type TestKey } from './support/keys.ts';
import { policyYaml } from './support/policy.ts';

const ISS = 'https://idp.test/';
const DEAD_ISS = 'https://dead.test/';
const AUD = 'orders-api';
const ENV = 'PALISADE_TEST_STAGE_INTROSPECTION_SECRET';
const PEER = 'spiffe://test.local/ns/shop/sa/web';

function authn(jwksUrl: string, introUrl: string, tokenSource = '{ from: bearer }', deadUrl = 'http://127.0.0.1:9/jwks'): string {
  return `
    jwt:
      tokenSource: ${tokenSource}
      issuers:
        - { issuer: "${ISS}", jwksUri: "${jwksUrl}", audiences: [${AUD}], jwks: { timeoutMs: 10000 } }
        - { issuer: "${DEAD_ISS}", jwksUri: "${deadUrl}", audiences: [${AUD}], jwks: { timeoutMs: 500 } }
    introspection:
      endpoint: ${introUrl}
      clientId: palisade
      clientSecret: { env: ${ENV} }
      timeoutMs: 10000
    requirements:
      - { id: public, paths: [/public/**], require: none }
      - { id: api, paths: [/api/**], require: { anyOf: [jwt, introspection] } }
      - { id: jwt-only, paths: [/jwt/**], require: jwt }
      - { id: admin, paths: [/admin/**], require: { allOf: [mtls, jwt] } }
    defaultRequire: mtls
  `;
}

describe('authn stage in the sidecar', () => {
  let h: Harness;
  let jwks: JwksServer;
  let intro: IntrospectionServer;
  let key: TestKey;
  let client: Agent;

  beforeAll(async () => {
    key = await makeKey('RS256');
    jwks = await startJwksServer([key.jwk]);
    intro = await startIntrospectionServer();
    process.env[ENV] = intro.clientSecret;
    h = await startHarness(policyYaml(authn(jwks.url, intro.url)), { services: createServices(createLogger({ level: 'silent' })) });
    client = await h.client(PEER);
  });
  afterAll(async () => {
    await h?.close();
    await jwks?.close();
    await intro?.close();
    delete process.env[ENV];
  });

  const token = (claims: Record<string, unknown> = {}, o: Parameters<typeof signToken>[2] = {}) => signToken(key, { iss: ISS, aud: AUD, sub: 'alice', scope: 'orders:read', ...claims }, o);
  const get = (path: string, headers: Record<string, string> = {}) => send(client, `${h.base}${path}`, { headers });
  const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
  const lastDecision = async (path: string) => {
    await until(() => h.decisions.some((d) => d.request.path === path));
    return h.decisions.filter((d) => d.request.path === path).at(-1)!;
  };

  it('forwards a request with a valid JWT, with the identity in the sidecar headers and the decision, never the token', async () => {
    const t = await token({ jti: 'tok-1' });
    const r = await get('/api/orders', bearer(t));
    expect(r.status).toBe(200);
    const up = h.upstream.requests.at(-1)!;
    expect(up.headers['x-palisade-identity']).toBe('alice');
    expect(up.headers['x-palisade-auth-methods']).toBe('mtls,jwt');
    expect(up.headers['x-palisade-spiffe-id']).toBe(PEER);
    expect(up.headers['x-palisade-scopes']).toBe('orders:read');
    const d = await lastDecision('/api/orders');
    expect(d.identity).toMatchObject({ subject: 'alice', methods: ['mtls', 'jwt'], spiffeId: PEER, issuer: ISS, tokenId: 'tok-1', scopes: ['orders:read'] });
    expect(JSON.stringify(h.decisions)).not.toContain(t);
    expect(JSON.stringify(h.decisions)).not.toContain(t.split('.')[2]);
  });

  it('a keep-alive connection that changes its credential is judged on the new one every time', async () => {
    const alice = await token({ jti: 'conn-a' });
    const bob = await token({ sub: 'bob', jti: 'conn-b' });
    const subjectOf = async (headers: Record<string, string>) => {
      const r = await get('/jwt/conn', headers);
      return r.status === 200 ? h.upstream.requests.at(-1)!.headers['x-palisade-identity'] : r.json?.['code'];
    };
    expect(await subjectOf(bearer(alice))).toBe('alice');
    expect(await subjectOf(bearer(alice))).toBe('alice');
    expect(await subjectOf(bearer(bob))).toBe('bob');
    expect(await subjectOf({ authorization: `Bearer ${alice}!` })).toBe('AUTHN_TOKEN_MALFORMED');
    expect(await subjectOf({ authorization: 'Basic YWxpY2U6cHc=' })).toBe('AUTHN_REQUIRED');
    expect(await subjectOf({})).toBe('AUTHN_REQUIRED');
    expect(await subjectOf(bearer(alice))).toBe('alice');
    expect(await subjectOf({ authorization: `bearer ${bob}` })).toBe('bob');
  });

  it('answers 401 AUTHN_REQUIRED with a Bearer challenge when no token is sent', async () => {
    const r = await get('/api/orders');
    expect(r.status).toBe(401);
    expect(r.json).toMatchObject({ code: 'AUTHN_REQUIRED' });
    expect(r.headers['www-authenticate']).toBe('Bearer realm="palisade"');
    expect((await lastDecision('/api/orders')).rule).toBe('api');
  });

  it('refuses expired, unsigned and wrong-audience tokens with their codes and an invalid_token challenge', async () => {
    const expired = await token({}, { now: Date.now() - 7200_000, expiresIn: 60 });
    const r1 = await get('/jwt/x', bearer(expired));
    expect([r1.status, r1.json?.['code']]).toEqual([401, 'AUTHN_TOKEN_EXPIRED']);
    expect(r1.headers['www-authenticate']).toBe('Bearer realm="palisade", error="invalid_token", error_description="Token expired"');
    const none = new UnsecuredJWT({ iss: ISS, aud: AUD, sub: 'admin' }).setExpirationTime('5m').encode();
    const r2 = await get('/jwt/x', bearer(none));
    expect([r2.status, r2.json?.['code']]).toEqual([401, 'AUTHN_ALGORITHM_FORBIDDEN']);
    const r3 = await get('/jwt/x', bearer(await token({ aud: 'billing' })));
    expect([r3.status, r3.json?.['code']]).toEqual([401, 'AUTHN_AUDIENCE_MISMATCH']);
    expect(JSON.stringify(r3.json)).not.toContain('billing');
  });

  it('anyOf [jwt, introspection]: an opaque token goes to introspection; a JWT-only route calls it malformed', async () => {
    intro.tokens.set('opaque-abc', { sub: 'bob', client_id: 'mobile', scope: 'orders:read' });
    const ok = await get('/api/orders', bearer('opaque-abc'));
    expect(ok.status).toBe(200);
    expect(h.upstream.requests.at(-1)!.headers['x-palisade-auth-methods']).toBe('mtls,introspection');
    expect(h.upstream.requests.at(-1)!.headers['x-palisade-identity']).toBe('bob');
    const inactive = await get('/api/orders', bearer('opaque-revoked'));
    expect([inactive.status, inactive.json?.['code']]).toEqual([401, 'AUTHN_TOKEN_INACTIVE']);
    const jwtOnly = await get('/jwt/x', bearer('opaque-abc'));
    expect([jwtOnly.status, jwtOnly.json?.['code']]).toEqual([401, 'AUTHN_TOKEN_MALFORMED']);
  });

  it('a JWT refused definitively is not sent to introspection', async () => {
    const before = intro.calls;
    const r = await get('/api/orders', bearer(await token({}, { now: Date.now() - 7200_000, expiresIn: 60 })));
    expect([r.status, r.json?.['code']]).toEqual([401, 'AUTHN_TOKEN_EXPIRED']);
    expect(intro.calls).toBe(before);
  });

  it('an introspection outage fails closed with 503 AUTHN_INTROSPECTION_UNAVAILABLE', async () => {
    intro.mode = 'error';
    try {
      const r = await get('/api/orders', bearer('opaque-during-outage'));
      expect([r.status, r.json?.['code']]).toEqual([503, 'AUTHN_INTROSPECTION_UNAVAILABLE']);
      expect(r.headers['www-authenticate']).toBeUndefined();
    } finally {
      intro.mode = 'ok';
    }
  });

  it('an issuer whose JWKS cannot be fetched gets 503 AUTHN_JWKS_UNAVAILABLE; the other issuer is unaffected', async () => {
    const dead = await signToken(key, { iss: DEAD_ISS, aud: AUD, sub: 'x' });
    const r = await get('/jwt/x', bearer(dead));
    expect([r.status, r.json?.['code']]).toEqual([503, 'AUTHN_JWKS_UNAVAILABLE']);
    expect((await get('/jwt/x', bearer(await token()))).status).toBe(200);
  });

  it('a public route needs nothing and carries the mTLS identity; tokens there are ignored', async () => {
    const r = await get('/public/docs', bearer('garbage!'));
    expect(r.status).toBe(200);
    expect(h.upstream.requests.at(-1)!.headers['x-palisade-spiffe-id']).toBe(PEER);
    expect((await lastDecision('/public/docs')).identity).toMatchObject({ subject: PEER, methods: ['mtls'] });
  });

  it('allOf [mtls, jwt] needs both; the requirement matches /ADMIN too', async () => {
    expect((await get('/admin/users', bearer(await token()))).status).toBe(200);
    const r = await get('/admin/users');
    expect([r.status, r.json?.['code']]).toEqual([401, 'AUTHN_REQUIRED']);
    const upper = await get('/ADMIN/users');
    expect([upper.status, upper.json?.['code']]).toEqual([401, 'AUTHN_REQUIRED']);
  });

  it('the default requirement (mtls) lets a mesh peer in with its SPIFFE identity', async () => {
    expect((await get('/other')).status).toBe(200);
    expect((await lastDecision('/other')).identity).toMatchObject({ subject: PEER, spiffeId: PEER, methods: ['mtls'] });
  });

  it('a repeated token is not verified again (verified-token cache)', async () => {
    const stats = authnServices(h.services).stats;
    const t = await token({ sub: 'cached' });
    expect((await get('/jwt/a', bearer(t))).status).toBe(200);
    const verifications = stats.jwtVerifications;
    const hits = stats.jwtCacheHits;
    for (let i = 0; i < 5; i++) expect((await get('/jwt/a', bearer(t))).status).toBe(200);
    expect(stats.jwtVerifications).toBe(verifications);
    expect(stats.jwtCacheHits).toBe(hits + 5);
  });

  it('a policy reload keeps warm JWKS keys and cached tokens; token from a cookie or a header after reload', async () => {
    const stats = authnServices(h.services).stats;
    const t = await token({ sub: 'reload' });
    expect((await get('/jwt/r', bearer(t))).status).toBe(200);
    const fetches = jwks.requests;
    const verifications = stats.jwtVerifications;
    h.writePolicy(policyYaml(authn(jwks.url, intro.url)).replace('version: "1"', 'version: "2"'));
    expect(await h.sidecar.reloadPolicy()).toBeNull();
    expect(h.sidecar.policy()!.version).toBe('2');
    expect((await get('/jwt/r', bearer(t))).status).toBe(200);
    expect(stats.jwtVerifications).toBe(verifications);

    h.writePolicy(policyYaml(authn(jwks.url, intro.url, '{ from: cookie, name: access_token }')));
    expect(await h.sidecar.reloadPolicy()).toBeNull();
    expect((await get('/jwt/r', { cookie: `theme=dark; access_token=${t}` })).status).toBe(200);
    expect((await get('/jwt/r', bearer(t))).json?.['code']).toBe('AUTHN_REQUIRED');
    expect((await get('/jwt/r', { cookie: `access_token=${t}; access_token=${t}` })).json?.['code']).toBe('AUTHN_TOKEN_MALFORMED');

    h.writePolicy(policyYaml(authn(jwks.url, intro.url, '{ from: header, name: x-access-token }')));
    expect(await h.sidecar.reloadPolicy()).toBeNull();
    expect((await get('/jwt/r', { 'x-access-token': t })).status).toBe(200);
    expect((await get('/jwt/r', { 'x-access-token': `Bearer ${t}` })).status).toBe(200);
    expect(jwks.requests).toBe(fetches);

    h.writePolicy(policyYaml(authn(jwks.url, intro.url)));
    expect(await h.sidecar.reloadPolicy()).toBeNull();
  });
});
