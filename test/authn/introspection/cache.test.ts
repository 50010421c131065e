import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { introspectionClientConfig } from '../../../src/authn/config.ts';
import { createIntrospector, type Introspector } from '../../../src/authn/introspection/cache.ts';
import type { TokenOutcome } from '../../../src/authn/result.ts';
import { authnServices, type AuthnServices } from '../../../src/authn/services.ts';
import { servicesWithClock, testClock, type TestClock } from '../support/clock.ts';
import { startIntrospectionServer, type IntrospectionServer } from '../support/introspection-server.ts';
import { validated } from '../support/policy.ts';

const ENV = 'PALISADE_TEST_INTROSPECTION_SECRET';

describe('token introspection', () => {
  let srv: IntrospectionServer;
  let dir: string;
  let clock: TestClock;
  let svc: AuthnServices;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'palisade-introspection-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    delete process.env[ENV];
  });
  beforeEach(async () => {
    srv = await startIntrospectionServer();
    process.env[ENV] = srv.clientSecret;
    writeFileSync(join(dir, 'secret'), `${srv.clientSecret}\n`);
    clock = testClock();
    svc = authnServices(servicesWithClock(clock));
  });
  afterEach(async () => {
    await srv.close();
  });

  /** A generous timeout: a loaded CI machine must not turn a slow answer into an outage (only the hang test wants it short). */
  function introspector(extra = '', secret = `{ env: ${ENV} }`, timeoutMs = 10_000): Introspector {
    const { spec } = validated(`
      introspection:
        endpoint: ${srv.url}
        clientId: palisade
        clientSecret: ${secret}
        timeoutMs: ${timeoutMs}
        cacheMaxSeconds: 30
        inactiveCacheSeconds: 5
${extra.split('\n').map((l) => `        ${l}`).join('\n')}
    `);
    const intro = spec.introspection!;
    return createIntrospector(intro, introspectionClientConfig(intro, dir), JSON.stringify(intro), svc);
  }
  const nowS = () => Math.floor(clock.now() / 1000);
  const codeOf = async (i: Introspector, t: string) => {
    const r: TokenOutcome = await i.introspect(t);
    return r.ok ? 'OK' : r.code;
  };

  it('an active token yields identity facts (scopes, client id, jti, exp); the response is not kept as a token', async () => {
    srv.tokens.set('opaque-1', { sub: 'alice', client_id: 'web', scope: 'orders:read orders:write', jti: 'j-1', exp: nowS() + 600, groups: ['ops'] });
    const r = await introspector().introspect('opaque-1');
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r).toMatchObject({ method: 'introspection', subject: 'alice', clientId: 'web', scopes: ['orders:read', 'orders:write'], groups: ['ops'], tokenId: 'j-1', expiresAt: nowS() + 600 });
    expect(r.claims).not.toHaveProperty('active');
    expect(JSON.stringify(r)).not.toContain('opaque-1');
    expect(srv.lastAuth).toEqual({ method: 'basic', clientId: 'palisade' });
  });

  it('authenticates with client_secret_post, and with a secret read from a file at call time (rotation picked up)', async () => {
    srv.tokens.set('t', { sub: 'a' });
    const post = introspector('authMethod: client_secret_post', '{ file: secret }');
    expect(await codeOf(post, 't')).toBe('OK');
    expect(srv.lastAuth).toEqual({ method: 'post', clientId: 'palisade' });
    srv.clientSecret = 'rotated';
    expect(await codeOf(post, 't2')).toBe('AUTHN_INTROSPECTION_UNAVAILABLE');
    writeFileSync(join(dir, 'secret'), 'rotated\n');
    srv.tokens.set('t3', { sub: 'b' });
    expect(await codeOf(post, 't3')).toBe('OK');
  });

  it('an inactive token gets AUTHN_TOKEN_INACTIVE, cached for inactiveCacheSeconds', async () => {
    const i = introspector();
    expect(await codeOf(i, 'revoked')).toBe('AUTHN_TOKEN_INACTIVE');
    expect(await codeOf(i, 'revoked')).toBe('AUTHN_TOKEN_INACTIVE');
    expect(srv.calls).toBe(1);
    clock.advance(5_000);
    expect(await codeOf(i, 'revoked')).toBe('AUTHN_TOKEN_INACTIVE');
    expect(srv.calls).toBe(2);
  });

  it('caches an active result no longer than cacheMaxSeconds', async () => {
    srv.tokens.set('long', { sub: 'a', exp: nowS() + 3600 });
    const i = introspector();
    expect(await codeOf(i, 'long')).toBe('OK');
    clock.advance(29_000);
    expect(i.introspect('long') instanceof Promise).toBe(false);
    expect(srv.calls).toBe(1);
    // Revoked meanwhile: seen as soon as the 30 s entry ends.
    srv.tokens.delete('long');
    clock.advance(1_000);
    expect(await codeOf(i, 'long')).toBe('AUTHN_TOKEN_INACTIVE');
    expect(srv.calls).toBe(2);
  });

  it('caches an active result no longer than the token exp', async () => {
    srv.tokens.set('short', { sub: 'a', exp: nowS() + 10 });
    const i = introspector();
    expect(await codeOf(i, 'short')).toBe('OK');
    clock.advance(9_000);
    expect(await codeOf(i, 'short')).toBe('OK');
    expect(srv.calls).toBe(1);
    clock.advance(1_000);
    expect(await codeOf(i, 'short')).toBe('OK'); // the server still says active (inside its skew): asked again
    expect(srv.calls).toBe(2);
  });

  it('fails closed with AUTHN_INTROSPECTION_UNAVAILABLE on 500, timeout and refused connection, and never caches it', async () => {
    const i = introspector();
    srv.tokens.set('t', { sub: 'a' });
    srv.mode = 'error';
    expect(await codeOf(i, 't')).toBe('AUTHN_INTROSPECTION_UNAVAILABLE');
    srv.mode = 'hang';
    // The server never answers, so a short timeout fires whatever the machine's load.
    expect(await codeOf(introspector('', undefined, 200), 't')).toBe('AUTHN_INTROSPECTION_UNAVAILABLE');
    srv.mode = 'ok';
    expect(await codeOf(i, 't')).toBe('OK');
    expect(srv.calls).toBe(3);
    await srv.stop();
    expect(await codeOf(i, 'other')).toBe('AUTHN_INTROSPECTION_UNAVAILABLE');
  });

  it('wrong client credentials fail closed', async () => {
    srv.clientSecret = 'something else';
    srv.tokens.set('t', { sub: 'a' });
    expect(await codeOf(introspector(), 't')).toBe('AUTHN_INTROSPECTION_UNAVAILABLE');
  });

  it('concurrent lookups of one token share one call', async () => {
    srv.tokens.set('hot', { sub: 'a' });
    const i = introspector();
    const codes = await Promise.all(Array.from({ length: 30 }, () => codeOf(i, 'hot')));
    expect(new Set(codes)).toEqual(new Set(['OK']));
    expect(srv.calls).toBe(1);
  });

  it('checks exp, nbf and the configured audiences of an active answer', async () => {
    const i = introspector('audiences: [orders-api]');
    srv.tokens.set('expired', { sub: 'a', aud: 'orders-api', exp: nowS() - 120 });
    srv.tokens.set('future', { sub: 'a', aud: 'orders-api', nbf: nowS() + 120 });
    srv.tokens.set('other-aud', { sub: 'a', aud: ['billing'] });
    srv.tokens.set('ok', { sub: 'a', aud: ['billing', 'orders-api'] });
    expect(await codeOf(i, 'expired')).toBe('AUTHN_TOKEN_EXPIRED');
    expect(await codeOf(i, 'future')).toBe('AUTHN_TOKEN_NOT_YET_VALID');
    expect(await codeOf(i, 'other-aud')).toBe('AUTHN_AUDIENCE_MISMATCH');
    expect(await codeOf(i, 'ok')).toBe('OK');
  });

  it('keeps no token as a cache key', async () => {
    srv.tokens.set('visible-token', { sub: 'a' });
    await introspector().introspect('visible-token');
    const st = [...svc.introspection.values()][0]!;
    expect([...st.cache.keys()].some((k) => k.includes('visible-token'))).toBe(false);
    expect(st.cache.size).toBe(1);
  });
});
