import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { authnServices, type AuthnServices } from '../../../src/authn/services.ts';
import { createJwtVerifier, type JwtVerifier } from '../../../src/authn/jwt/verify.ts';
import type { TokenOutcome } from '../../../src/authn/result.ts';
import { compilePolicy, parsePolicyText, validatePolicy } from '../../../src/policy/load.ts';
import type { Services } from '../../../src/sidecar/services.ts';
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

  it('picks up a rotated key with one refetch, and drops tokens of a key that left the set', async () => {
    const s = await jwksWith(k1);
    const v = verifierFor({ iss: ISS, url: s.url });
    const old = await token(k1);
    expect(await codeOf(v, old)).toBe('OK');
    const k2 = await makeKey('ES256');
    s.keys = [k2.jwk];
    const fresh = await token(k2);
    // Inside the cooldown the new kid is unknown, and no fetch is made.
    expect(await codeOf(v, fresh)).toBe('AUTHN_KEY_UNKNOWN');
    expect(s.requests).toBe(1);
    clock.advance(COOLDOWN_S * 1000);
    expect(await codeOf(v, fresh)).toBe('OK');
    expect(s.requests).toBe(2);
    // k1 is gone from the set: its cached verdict is dropped, and the token is refused.
    expect(await codeOf(v, old)).toBe('AUTHN_KEY_UNKNOWN');
    expect(s.requests).toBe(2);
  });

  it('a flood of forged kids costs at most one JWKS fetch per cooldown', async () => {
    const s = await jwksWith(k1);
    const v = verifierFor({ iss: ISS, url: s.url });
    expect(await codeOf(v, await token(k1))).toBe('OK');
    expect(s.requests).toBe(1);
    const forged = await Promise.all(Array.from({ length: 200 }, () => token(k1, {}, `forged-${randomUUID()}`)));
    const first = await Promise.all(forged.map((t) => codeOf(v, t)));
    expect(new Set(first)).toEqual(new Set(['AUTHN_KEY_UNKNOWN']));
    expect(s.requests).toBe(1);
    for (let round = 1; round <= 3; round++) {
      clock.advance(COOLDOWN_S * 1000);
      const again = await Promise.all(forged.map((t) => codeOf(v, t)));
      expect(new Set(again)).toEqual(new Set(['AUTHN_KEY_UNKNOWN']));
      expect(s.requests).toBe(1 + round);
    }
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

  it('refreshes a stale key set in the background, once', async () => {
    const s = await jwksWith(k1);
    const v = verifierFor({ iss: ISS, url: s.url });
    expect(await codeOf(v, await token(k1))).toBe('OK');
    clock.advance(MAX_AGE_S * 1000);
    const results = await Promise.all([1, 2, 3].map(async (i) => codeOf(v, await token(k1, { sub: `s${i}` }))));
    expect(results).toEqual(['OK', 'OK', 'OK']);
    await svc.jwks.get(`${ISS}\n${s.url}`)!.refresh();
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
