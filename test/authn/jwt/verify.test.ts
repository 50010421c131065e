import { createHmac } from 'node:crypto';
import { exportSPKI, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { authnServices, type AuthnServices } from '../../../src/authn/services.ts';
import { createJwtVerifier, type JwtVerifier } from '../../../src/authn/jwt/verify.ts';
import type { TokenOutcome } from '../../../src/authn/result.ts';
import { startJwksServer, type JwksServer } from '../support/jwks-server.ts';
import { makeKey, rawToken, signToken, b64url, type TestKey } from '../support/keys.ts';
import { servicesWithClock, testClock, type TestClock } from '../support/clock.ts';
import { validated } from '../support/policy.ts';

const ISS = 'https://idp.test/realms/a';
const AUD = 'orders-api';

describe('JWT verification', () => {
  let jwks: JwksServer;
  let rsa: TestKey;
  let ec: TestKey;
  let ed: TestKey;
  let clock: TestClock;
  let svc: AuthnServices;
  let verifier: JwtVerifier;

  beforeAll(async () => {
    rsa = await makeKey('RS256');
    ec = await makeKey('ES256');
    ed = await makeKey('EdDSA');
    jwks = await startJwksServer([rsa.jwk, ec.jwk, ed.jwk]);
  });
  afterAll(async () => {
    await jwks?.close();
  });
  beforeEach(() => {
    clock = testClock();
    svc = authnServices(servicesWithClock(clock));
    const { spec } = validated(`
      jwt:
        issuers:
          - issuer: ${ISS}
            jwksUri: ${jwks.url}
            audiences: [${AUD}]
            jwks: { timeoutMs: 10000 }
            claims: { scopes: [scope, scp], groups: [groups, realm_access.roles] }
    `);
    verifier = createJwtVerifier(spec.jwt.issuers, 'fp', svc);
  });

  const claims = (more: Record<string, unknown> = {}) => ({ iss: ISS, aud: AUD, sub: 'alice', ...more });
  const verify = async (t: string): Promise<TokenOutcome> => verifier.verify(t);
  const codeOf = async (t: string) => {
    const r = await verify(t);
    return r.ok ? 'OK' : r.code;
  };

  it('accepts valid RS256, ES256 and EdDSA tokens and maps sub, scopes, groups, jti, exp', async () => {
    for (const key of [rsa, ec, ed]) {
      const t = await signToken(key, claims({ scope: 'orders:read orders:write', scp: ['admin'], groups: ['ops'], realm_access: { roles: ['ops', 'dev'] } }), { now: clock.now() });
      const r = await verify(t);
      expect(r.ok, key.alg).toBe(true);
      if (!r.ok) continue;
      expect(r.subject).toBe('alice');
      expect(r.issuer).toBe(ISS);
      expect(r.scopes).toEqual(['orders:read', 'orders:write', 'admin']);
      expect(r.groups).toEqual(['ops', 'dev']);
      expect(typeof r.tokenId).toBe('string');
      expect(r.expiresAt).toBe(Math.floor(clock.now() / 1000) + 300);
      expect(JSON.stringify(r)).not.toContain(t);
    }
  });

  it('takes the subject from client_id (or azp) when there is no sub', async () => {
    const r = await verify(await signToken(rsa, { iss: ISS, aud: AUD, client_id: 'svc-a' }, { now: clock.now() }));
    expect(r.ok && r.subject === null && r.clientId === 'svc-a').toBe(true);
  });

  it('refuses alg none, even with a trusted iss and a known kid', async () => {
    const unsigned = new UnsecuredJWT(claims({ exp: Math.floor(clock.now() / 1000) + 60 })).encode();
    expect(await codeOf(unsigned)).toBe('AUTHN_ALGORITHM_FORBIDDEN');
    const withKid = rawToken({ alg: 'none', kid: rsa.kid }, claims({ exp: Math.floor(clock.now() / 1000) + 60 }));
    expect(await codeOf(withKid)).toBe('AUTHN_ALGORITHM_FORBIDDEN');
    expect(await codeOf(rawToken({ alg: 'NONE', kid: rsa.kid }, claims()))).toBe('AUTHN_ALGORITHM_FORBIDDEN');
  });

  it('refuses an HS256 token signed with the RSA public key (key confusion), as PEM and as JWK text', async () => {
    const payload = claims({ exp: Math.floor(clock.now() / 1000) + 60 });
    for (const secret of [await exportSPKI(rsa.publicKey), JSON.stringify(rsa.jwk)]) {
      const header = { alg: 'HS256', kid: rsa.kid, typ: 'JWT' };
      const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
      const forged = `${signingInput}.${b64url(createHmac('sha256', secret).update(signingInput).digest())}`;
      expect(await codeOf(forged)).toBe('AUTHN_ALGORITHM_FORBIDDEN');
    }
    expect(svc.stats.jwtVerifications).toBe(0);
  });

  it('ignores symmetric (oct) keys a JWKS may list: an HS256 token made with one is refused', async () => {
    const secret = Buffer.from('published-in-the-jwks-so-not-a-secret');
    const saved = jwks.keys;
    jwks.keys = [...saved, { kty: 'oct', kid: 'hmac', k: secret.toString('base64url'), alg: 'HS256' }];
    try {
      const header = { alg: 'HS256', kid: 'hmac' };
      const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims({ exp: Math.floor(clock.now() / 1000) + 60 })))}`;
      expect(await codeOf(`${input}.${b64url(createHmac('sha256', secret).update(input).digest())}`)).toBe('AUTHN_ALGORITHM_FORBIDDEN');
    } finally {
      jwks.keys = saved;
    }
  });

  it('refuses a token whose alg does not fit the key its kid names (RS256 header, EC key)', async () => {
    const t = await signToken(rsa, claims(), { now: clock.now(), kid: ec.kid });
    expect(await codeOf(t)).toBe('AUTHN_TOKEN_INVALID');
  });

  it('refuses an algorithm outside the issuer allow-list', async () => {
    const { spec } = validated(`
      jwt:
        issuers:
          - { issuer: ${ISS}, jwksUri: ${jwks.url}, audiences: [${AUD}], algorithms: [ES256] }
    `);
    const only = createJwtVerifier(spec.jwt.issuers, 'fp-es', svc);
    const r = await only.verify(await signToken(rsa, claims(), { now: clock.now() }));
    expect(r.ok ? 'OK' : r.code).toBe('AUTHN_ALGORITHM_FORBIDDEN');
    const ok = await only.verify(await signToken(ec, claims(), { now: clock.now() }));
    expect(ok.ok).toBe(true);
  });

  it('checks exp with the clock skew (30 s default)', async () => {
    const now = clock.now();
    expect(await codeOf(await signToken(rsa, claims(), { now: now - 3600_000, expiresIn: 3600 - 60 }))).toBe('AUTHN_TOKEN_EXPIRED');
    // Expired 10 s ago: inside the skew, accepted.
    expect(await codeOf(await signToken(rsa, claims(), { now: now - 3600_000, expiresIn: 3600 - 10 }))).toBe('OK');
  });

  it('checks nbf and iat with the clock skew', async () => {
    const s = Math.floor(clock.now() / 1000);
    expect(await codeOf(await signToken(rsa, claims(), { now: clock.now(), notBefore: s + 120 }))).toBe('AUTHN_TOKEN_NOT_YET_VALID');
    expect(await codeOf(await signToken(rsa, claims(), { now: clock.now(), notBefore: s + 20 }))).toBe('OK');
    expect(await codeOf(await signToken(rsa, claims(), { now: clock.now(), issuedAt: s + 120 }))).toBe('AUTHN_TOKEN_NOT_YET_VALID');
  });

  it('refuses an unknown issuer, a wrong audience, a missing exp, a bad signature and garbage', async () => {
    expect(await codeOf(await signToken(rsa, claims({ iss: 'https://evil.test/' }), { now: clock.now() }))).toBe('AUTHN_ISSUER_UNKNOWN');
    expect(await codeOf(await signToken(rsa, { aud: AUD, sub: 'x' }, { now: clock.now() }))).toBe('AUTHN_ISSUER_UNKNOWN');
    expect(await codeOf(await signToken(rsa, claims({ aud: 'billing-api' }), { now: clock.now() }))).toBe('AUTHN_AUDIENCE_MISMATCH');
    expect(await codeOf(await signToken(rsa, claims(), { now: clock.now(), expiresIn: null }))).toBe('AUTHN_TOKEN_INVALID');
    const good = await signToken(rsa, claims(), { now: clock.now() });
    const [h, , sig] = good.split('.');
    const tampered = `${h}.${b64url(JSON.stringify(claims({ sub: 'admin', exp: Math.floor(clock.now() / 1000) + 60 })))}.${sig}`;
    expect(await codeOf(tampered)).toBe('AUTHN_TOKEN_INVALID');
    expect(await codeOf('not-a-jwt')).toBe('AUTHN_TOKEN_MALFORMED');
    expect(await codeOf('e30.e30.e30.e30.e30')).toBe('AUTHN_TOKEN_MALFORMED');
  });

  it('a token without kid is verified against the keys that fit its alg', async () => {
    expect(await codeOf(await signToken(ec, claims(), { now: clock.now(), kid: null }))).toBe('OK');
  });

  describe('verified-token cache', () => {
    it('a repeated token is answered from the cache, synchronously, without a signature check', async () => {
      const t = await signToken(rsa, claims(), { now: clock.now() });
      expect((await verify(t)).ok).toBe(true);
      expect(svc.stats.jwtVerifications).toBe(1);
      const again = verifier.verify(t);
      expect(again instanceof Promise).toBe(false);
      expect((again as TokenOutcome).ok).toBe(true);
      expect(svc.stats.jwtVerifications).toBe(1);
      expect(svc.stats.jwtCacheHits).toBe(1);
    });

    it('keys the cache by a hash, never by the token', async () => {
      const t = await signToken(rsa, claims(), { now: clock.now() });
      await verify(t);
      const keys = [...svc.tokens.keys()];
      expect(keys.length).toBe(1);
      expect(keys[0]).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(keys.some((k) => k.includes(t) || t.includes(k))).toBe(false);
    });

    it('an entry lives until the token exp at most', async () => {
      const t = await signToken(rsa, claims(), { now: clock.now(), expiresIn: 60 });
      expect((await verify(t)).ok).toBe(true);
      clock.advance(59_000);
      expect(verifier.verify(t) instanceof Promise).toBe(false);
      clock.advance(40_000); // 99 s: past exp and the 30 s skew
      expect(await codeOf(t)).toBe('AUTHN_TOKEN_EXPIRED');
    });

    it('is bounded (least recently used evicted)', async () => {
      svc.tokens.resize(3);
      const tokens = await Promise.all([1, 2, 3, 4].map((i) => signToken(rsa, claims({ sub: `u${i}` }), { now: clock.now() })));
      for (const t of tokens) await verify(t);
      expect(svc.tokens.size).toBe(3);
      expect(verifier.verify(tokens[0]!) instanceof Promise).toBe(true);
    });
  });
});
