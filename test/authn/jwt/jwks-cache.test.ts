import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { authnServices, type AuthnServices } from '../../../src/authn/services.ts';
import { createJwtVerifier, type JwtVerifier } from '../../../src/authn/jwt/verify.ts';
import type { TokenOutcome } from '../../../src/authn/result.ts';
import { compilePolicy, parsePolicyText, validatePolicy } from '../../../src/policy/load.ts';
import type { Services } from '../../../src/pipeline/services.ts';
import { servicesWithClock, testClock, type TestClock } from '../support/clock.ts';
import { startJwksServer, type JwksServer } from '../support/jwks-server.ts';
import { makeKey, signToken, type TestKey } from '../support/keys.ts';
import { policyYaml, validated } from '../support/policy.ts';

const ISS = 'https://idp.test/';
const AUD = 'api';
const COOLDOWN_S = 30;
const MAX_AGE_S = 300;

describe('JWKS cache', () => {
  let servers: JwksServer[] = [];
  let clock: TestClock;
  let services: Services;
  let svc: AuthnServices;
  let k1: TestKey;

  beforeEach(async () => {
    clock = testClock();
    services = servicesWithClock(clock);
    svc = authnServices(services);
    k1 = await makeKey('RS256');
  });
  afterEach(async () => {
    await Promise.all(servers.map((s) => s.close()));
    servers = [];
  });

  async function jwksWith(...keys: TestKey[]): Promise<JwksServer> {
    const s = await startJwksServer(keys.map((k) => k.jwk));
    servers.push(s);
    return s;
  }
  function verifierFor(...issuers: { iss: string; url: string; timeoutMs?: number }[]): JwtVerifier {
    const { spec } = validated(`
      jwt:
        issuers:
${issuers.map((i) => `          - { issuer: "${i.iss}", jwksUri: "${i.url}", audiences: [${AUD}], jwks: { cooldownSeconds: ${COOLDOWN_S}, cacheMaxAgeSeconds: ${MAX_AGE_S}, timeoutMs: ${i.timeoutMs ?? 10_000} } }`).join('\n')}
    `);
    return createJwtVerifier(spec.jwt.issuers, 'fp', svc);
  }
  const token = (key: TestKey, more: Record<string, unknown> = {}, kid?: string) => signToken(key, { iss: ISS, aud: AUD, sub: 'alice', ...more }, { now: clock.now(), ...(kid !== undefined ? { kid } : {}) });
  const codeOf = async (v: JwtVerifier, t: string) => {
    const r: TokenOutcome = await v.verify(t);
    return r.ok ? 'OK' : r.code;
  };

  it('does no network I/O at policy load; the first token fetches the key set', async () => {
    const s = await jwksWith(k1);
    const text = policyYaml(`
      jwt:
        issuers: [{ issuer: "${ISS}", jwksUri: "${s.url}", audiences: [${AUD}] }]
      defaultRequire: jwt
    `);
    const { document, hash } = validatePolicy(parsePolicyText(text, 't'), 't');
    await compilePolicy(document, hash, '/tmp', services);
    expect(s.requests).toBe(0);
    const v = verifierFor({ iss: ISS, url: s.url });
    expect(await codeOf(v, await token(k1))).toBe('OK');
    expect(s.requests).toBe(1);
  });

  it('concurrent requests on a cold cache share one fetch (single flight)', async () => {
    const s = await jwksWith(k1);
    const v = verifierFor({ iss: ISS, url: s.url });
    const tokens = await Promise.all(Array.from({ length: 25 }, (_, i) => token(k1, { sub: `u${i}` })));
    const codes = await Promise.all(tokens.map((t) => codeOf(v, t)));
    expect(new Set(codes)).toEqual(new Set(['OK']));
    expect(s.requests).toBe(1);
  });

  it('a key published right after a routine fetch is accepted at once: the fetch does not arm the cooldown', async () => {
    const s = await jwksWith(k1);
    const v = verifierFor({ iss: ISS, url: s.url });
    const old = await token(k1);
    expect(await codeOf(v, old)).toBe('OK');
    expect(s.requests).toBe(1);
    // The issuer publishes a new key and signs with it at once; the clock has not moved.
    const k2 = await makeKey('ES256');
    s.keys = [k1.jwk, k2.jwk];
    expect(await codeOf(v, await token(k2))).toBe('OK');
    expect(s.requests).toBe(2);
    expect(await codeOf(v, old)).toBe('OK');
    expect(await codeOf(v, await token(k2, { sub: 'bob' }))).toBe('OK');
    expect(s.requests).toBe(2);
  });

  it('a refetch that did not find the kid arms the cooldown; a kid published later is fetched once it ends', async () => {
    const s = await jwksWith(k1);
    const v = verifierFor({ iss: ISS, url: s.url });
    expect(await codeOf(v, await token(k1))).toBe('OK');
    const k2 = await makeKey('ES256');
    // Signed with before it is published: the refetch does not find it.
    expect(await codeOf(v, await token(k2))).toBe('AUTHN_KEY_UNKNOWN');
    expect(s.requests).toBe(2);
    s.keys = [k1.jwk, k2.jwk];
    clock.advance(COOLDOWN_S * 1000 - 1);
    expect(await codeOf(v, await token(k2))).toBe('AUTHN_KEY_UNKNOWN');
    expect(s.requests).toBe(2);
    clock.advance(1);
    expect(await codeOf(v, await token(k2))).toBe('OK');
    expect(s.requests).toBe(3);
  });

  it('a flood of forged kids costs at most one JWKS fetch per cooldown, also right after a routine fetch', async () => {
    const s = await jwksWith(k1);
    const v = verifierFor({ iss: ISS, url: s.url });
    expect(await codeOf(v, await token(k1))).toBe('OK');
    expect(s.requests).toBe(1);
    const forged = await Promise.all(Array.from({ length: 200 }, () => token(k1, {}, `forged-${randomUUID()}`)));
    const first = await Promise.all(forged.map((t) => codeOf(v, t)));
    expect(new Set(first)).toEqual(new Set(['AUTHN_KEY_UNKNOWN']));
    expect(s.requests).toBe(2);
    for (let round = 1; round <= 3; round++) {
      clock.advance(COOLDOWN_S * 1000);
      const again = await Promise.all(forged.map((t) => codeOf(v, t)));
      expect(new Set(again)).toEqual(new Set(['AUTHN_KEY_UNKNOWN']));
      expect(s.requests).toBe(2 + round);
    }
    // Sequentially too: one fetch for the lot.
    clock.advance(COOLDOWN_S * 1000);
    for (const t of forged.slice(0, 50)) expect(await codeOf(v, t)).toBe('AUTHN_KEY_UNKNOWN');
    expect(s.requests).toBe(6);
    // The known key is untouched by all this.
    expect(await codeOf(v, await token(k1, { sub: 'known' }))).toBe('OK');
  });

  it('a key removed from the JWKS stops verifying within the max-age the JWKS answers, and its verdicts leave the token cache', async () => {
    const s = await jwksWith(k1);
    s.headers = { 'cache-control': 'public, max-age=5' };
    const v = verifierFor({ iss: ISS, url: s.url });
    const k2 = await makeKey('ES256');
    const old = await token(k1);
    const other = await token(k2);
    s.keys = [k1.jwk, k2.jwk];
    expect(await codeOf(v, old)).toBe('OK');
    expect(await codeOf(v, other)).toBe('OK');
    expect(svc.tokens.size).toBe(2);
    const state = svc.jwks.get(`${ISS}\n${s.url}`)!;
    expect(state.lifetimeMs).toBe(5000);
    // The issuer removes k1. Until the set's lifetime ends, the cached verdict still holds (no fetch).
    s.keys = [k2.jwk];
    const before = s.requests;
    // 90% of the lifetime: no refetch ahead either, since that would be sooner than cacheMinAgeSeconds (5 s).
    clock.advance(4500);
    expect(v.verify(old)).toMatchObject({ ok: true });
    expect(s.requests).toBe(before);
    // Past the lifetime, the lookup waits for the refetch: k1 is gone.
    clock.advance(500);
    expect(await codeOf(v, old)).toBe('AUTHN_KEY_UNKNOWN');
    expect(s.requests).toBe(before + 1);
    expect(svc.tokens.size).toBe(1);
    expect(await codeOf(v, other)).toBe('OK');
    // A fresh token of the removed key is refused too (one refetch for its kid, then the cooldown).
    expect(await codeOf(v, await token(k1, { sub: 'new' }))).toBe('AUTHN_KEY_UNKNOWN');
    expect(await codeOf(v, await token(k1, { sub: 'newer' }))).toBe('AUTHN_KEY_UNKNOWN');
    expect(s.requests).toBe(before + 2);
  });

  it('under traffic the set is refetched ahead of its lifetime in the background: no request waits, and removed keys leave the token cache then', async () => {
    const s = await jwksWith(k1);
    s.headers = { 'cache-control': 'max-age=10' };
    const v = verifierFor({ iss: ISS, url: s.url });
    const k2 = await makeKey('ES256');
    s.keys = [k1.jwk, k2.jwk];
    const old = await token(k1);
    expect(await codeOf(v, old)).toBe('OK');
    expect(await codeOf(v, await token(k2))).toBe('OK');
    expect(svc.tokens.size).toBe(2);
    s.keys = [k2.jwk];
    clock.advance(8000); // 80% of the lifetime
    // Answered at once from the cache (not a promise); the refetch runs behind it.
    const r = v.verify(old);
    expect(r).not.toBeInstanceOf(Promise);
    expect(r).toMatchObject({ ok: true });
    await svc.jwks.get(`${ISS}\n${s.url}`)!.refresh();
    expect(s.requests).toBe(2);
    expect(svc.tokens.size).toBe(1);
    expect(await codeOf(v, old)).toBe('AUTHN_KEY_UNKNOWN');
  });

  it('past its lifetime, concurrent requests share one refetch', async () => {
    const s = await jwksWith(k1);
    const v = verifierFor({ iss: ISS, url: s.url });
    expect(await codeOf(v, await token(k1))).toBe('OK');
    clock.advance(MAX_AGE_S * 1000);
    const results = await Promise.all([1, 2, 3, 4, 5].map(async (i) => codeOf(v, await token(k1, { sub: `s${i}` }))));
    expect(results).toEqual(['OK', 'OK', 'OK', 'OK', 'OK']);
    expect(s.requests).toBe(2);
  });

  it('honours the JWKS response\'s lifetime within cacheMinAgeSeconds and cacheMaxAgeSeconds', async () => {
    const s = await jwksWith(k1);
    const lifetimeWith = async (headers: Record<string, string>, bounds = ''): Promise<number> => {
      s.headers = headers;
      const local = authnServices(servicesWithClock(clock));
      const { spec } = validated(`
        jwt:
          issuers: [{ issuer: "${ISS}", jwksUri: "${s.url}", audiences: [${AUD}], jwks: { timeoutMs: 10000 ${bounds} } }]
      `);
      const v = createJwtVerifier(spec.jwt.issuers, 'fp', local);
      expect((await v.verify(await token(k1))).ok).toBe(true);
      return local.jwks.get(`${ISS}\n${s.url}`)!.lifetimeMs;
    };
    // Defaults: at least 5 s, at most 300 s; 300 s when the response says nothing.
    expect(await lifetimeWith({ 'cache-control': 'max-age=42' })).toBe(42_000);
    expect(await lifetimeWith({})).toBe(300_000);
    expect(await lifetimeWith({ 'cache-control': 'max-age=1' })).toBe(5_000);
    expect(await lifetimeWith({ 'cache-control': 'no-cache' })).toBe(5_000);
    expect(await lifetimeWith({ 'cache-control': 'public, max-age=86400, must-revalidate' })).toBe(300_000);
    // A shared cache in front says how old its copy is.
    expect(await lifetimeWith({ 'cache-control': 'max-age=60', age: '45' })).toBe(15_000);
    expect(await lifetimeWith({ expires: new Date(Date.now() + 120_000).toUTCString(), date: new Date().toUTCString() })).toBeGreaterThan(118_000);
    // Malformed or exhausted: no lifetime left, so the lower bound.
    expect(await lifetimeWith({ 'cache-control': 'max-age=abc' })).toBe(5_000);
    expect(await lifetimeWith({ 'cache-control': 'max-age="30"' })).toBe(30_000);
    expect(await lifetimeWith({ 'cache-control': 'max-age=30', age: '100' })).toBe(5_000);
    expect(await lifetimeWith({ 'cache-control': 'no-store, max-age=60' })).toBe(5_000);
    expect(await lifetimeWith({ expires: 'not a date' })).toBe(5_000);
    expect(await lifetimeWith({ expires: 'Thu, 01 Jan 1970 00:00:00 GMT' })).toBe(5_000);
    // The bounds are the policy's.
    expect(await lifetimeWith({ 'cache-control': 'max-age=1' }, ', cacheMinAgeSeconds: 1')).toBe(1_000);
    expect(await lifetimeWith({ 'cache-control': 'max-age=86400' }, ', cacheMaxAgeSeconds: 3600')).toBe(3_600_000);
  });

  it('a 304 (ETag) renews the set and its lifetime; the 304\'s own Cache-Control replaces the old one', async () => {
    const s = await jwksWith(k1);
    s.etags = true;
    s.headers = { 'cache-control': 'max-age=10' };
    const v = verifierFor({ iss: ISS, url: s.url });
    const cached = await token(k1);
    expect(await codeOf(v, cached)).toBe('OK');
    const state = svc.jwks.get(`${ISS}\n${s.url}`)!;
    expect(state.lifetimeMs).toBe(10_000);
    s.headers = { 'cache-control': 'max-age=20' };
    clock.advance(10_000);
    expect(await codeOf(v, cached)).toBe('OK');
    expect([s.requests, s.notModified]).toEqual([2, 1]);
    expect(state.lifetimeMs).toBe(20_000);
    expect(state.keyCount).toBe(1);
    // Renewed: nothing is fetched until the new lifetime nears its end.
    clock.advance(15_000);
    expect(await codeOf(v, await token(k1, { sub: 'x' }))).toBe('OK');
    expect(s.requests).toBe(2);
  });

  it('past its lifetime with the JWKS host down, known keys and cached verdicts stay in use; the host is tried once per cooldown', async () => {
    const s = await jwksWith(k1);
    s.headers = { 'cache-control': 'max-age=5' };
    const v = verifierFor({ iss: ISS, url: s.url });
    const cached = await token(k1);
    expect(await codeOf(v, cached)).toBe('OK');
    s.mode = 'error';
    clock.advance(6000);
    // The first request past the lifetime waits for the refetch, which fails: the known key stays.
    expect(await codeOf(v, cached)).toBe('OK');
    expect(s.requests).toBe(2);
    expect(await codeOf(v, await token(k1, { sub: 'bob' }))).toBe('OK');
    expect(await codeOf(v, cached)).toBe('OK');
    expect(s.requests).toBe(2);
    clock.advance(COOLDOWN_S * 1000);
    // Retried in the background, not waited for.
    expect(await codeOf(v, cached)).toBe('OK');
    await svc.jwks.get(`${ISS}\n${s.url}`)!.refresh();
    expect(s.requests).toBe(3);
  });

  it('keeps verifying with known keys while the JWKS host is down; an unknown kid gets AUTHN_JWKS_UNAVAILABLE', async () => {
    const s = await jwksWith(k1);
    const v = verifierFor({ iss: ISS, url: s.url });
    expect(await codeOf(v, await token(k1))).toBe('OK');
    await s.stop();
    clock.advance(MAX_AGE_S * 1000 + 1);
    // Stale and the host is gone: a new token with the known kid still verifies (the refresh runs in the background and fails).
    expect(await codeOf(v, await token(k1, { sub: 'bob' }))).toBe('OK');
    clock.advance(COOLDOWN_S * 1000);
    expect(await codeOf(v, await token(k1, {}, 'rotated-kid'))).toBe('AUTHN_JWKS_UNAVAILABLE');
    expect(await codeOf(v, await token(k1, { sub: 'carol' }))).toBe('OK');
  });

  it('a host that answers 500 is tried at most once per cooldown; the first fetch failing gives AUTHN_JWKS_UNAVAILABLE', async () => {
    const s = await jwksWith(k1);
    s.mode = 'error';
    const v = verifierFor({ iss: ISS, url: s.url });
    const tokens = await Promise.all(Array.from({ length: 20 }, (_, i) => token(k1, { sub: `u${i}` })));
    expect(new Set(await Promise.all(tokens.map((t) => codeOf(v, t))))).toEqual(new Set(['AUTHN_JWKS_UNAVAILABLE']));
    expect(s.requests).toBe(1);
    s.mode = 'ok';
    expect(await codeOf(v, tokens[0]!)).toBe('AUTHN_JWKS_UNAVAILABLE');
    expect(s.requests).toBe(1);
    clock.advance(COOLDOWN_S * 1000);
    expect(await codeOf(v, tokens[0]!)).toBe('OK');
    expect(s.requests).toBe(2);
  });

  it('one hanging issuer does not hold up another', async () => {
    const kb = await makeKey('ES256');
    const slow = await jwksWith(k1);
    slow.mode = 'hang';
    const fast = await jwksWith(kb);
    const ISS_B = 'https://other.test/';
    const v = verifierFor({ iss: ISS, url: slow.url, timeoutMs: 10_000 }, { iss: ISS_B, url: fast.url });
    let slowDone = false;
    const slowResult = codeOf(v, await token(k1)).finally(() => {
      slowDone = true;
    });
    const b = await signToken(kb, { iss: ISS_B, aud: AUD, sub: 'bob' }, { now: clock.now() });
    expect(await codeOf(v, b)).toBe('OK');
    expect(slowDone).toBe(false);
    await slow.stop();
    expect(await slowResult).toBe('AUTHN_JWKS_UNAVAILABLE');
  });

  it('keeps warm keys across a policy reload (state lives in the services)', async () => {
    const s = await jwksWith(k1);
    const v1 = verifierFor({ iss: ISS, url: s.url });
    expect(await codeOf(v1, await token(k1))).toBe('OK');
    const v2 = verifierFor({ iss: ISS, url: s.url });
    expect(await codeOf(v2, await token(k1, { sub: 'other' }))).toBe('OK');
    expect(s.requests).toBe(1);
  });
});
