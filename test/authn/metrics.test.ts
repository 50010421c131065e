import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIntrospector } from '../../src/authn/introspection/cache.ts';
import { introspectionClientConfig } from '../../src/authn/config.ts';
import { createJwtVerifier } from '../../src/authn/jwt/verify.ts';
import { authnMetricsFrom } from '../../src/authn/metrics.ts';
import { authnServices } from '../../src/authn/services.ts';
import { createSidecarMetrics } from '../../src/sidecar/metrics.ts';
import { servicesWithClock, testClock } from './support/clock.ts';
import { startIntrospectionServer, type IntrospectionServer } from './support/introspection-server.ts';
import { startJwksServer, type JwksServer } from './support/jwks-server.ts';
import { makeKey, signToken } from './support/keys.ts';
import { validated } from './support/policy.ts';

const ENV = 'PALISADE_TEST_METRICS_SECRET';

describe('authn metric hooks -> Prometheus', () => {
  let jwks: JwksServer;
  let intro: IntrospectionServer;
  beforeAll(async () => {
    jwks = await startJwksServer();
    intro = await startIntrospectionServer();
    process.env[ENV] = intro.clientSecret;
  });
  afterAll(async () => {
    await jwks.close();
    await intro.close();
    delete process.env[ENV];
  });

  it('counts JWKS fetches and cache hits per configured issuer, token cache lookups and introspection calls', async () => {
    const key = await makeKey('ES256');
    jwks.keys = [key.jwk];
    const registry = new Registry();
    const metrics = createSidecarMetrics(registry, { processMetrics: false });
    const clock = testClock();
    const svc = authnServices(servicesWithClock(clock));
    svc.metrics = authnMetricsFrom(metrics);
    const { spec } = validated(`
      jwt:
        issuers: [{ issuer: "https://idp.test/", jwksUri: "${jwks.url}", audiences: [api], jwks: { timeoutMs: 10000 } }]
      introspection: { endpoint: "${intro.url}", clientId: palisade, clientSecret: { env: ${ENV} }, timeoutMs: 10000 }
    `);
    const v = createJwtVerifier(spec.jwt.issuers, 'fp', svc);
    const t = await signToken(key, { iss: 'https://idp.test/', aud: 'api', sub: 'a' }, { now: clock.now() });
    expect((await v.verify(t)).ok).toBe(true);
    expect((await v.verify(t)).ok).toBe(true);
    // An unknown kid refetches once (not found: the cooldown is armed); the next unknown kid is answered from memory.
    expect((await v.verify(await signToken(key, { iss: 'https://idp.test/', aud: 'api', sub: 'a' }, { now: clock.now(), kid: 'forged' }))).ok).toBe(false);
    expect((await v.verify(await signToken(key, { iss: 'https://idp.test/', aud: 'api', sub: 'a' }, { now: clock.now(), kid: 'forged-2' }))).ok).toBe(false);
    const i = createIntrospector(spec.introspection!, introspectionClientConfig(spec.introspection!, '/'), 'fp', svc);
    intro.tokens.set('opaque', { sub: 'b' });
    await i.introspect('opaque');
    await i.introspect('opaque');
    await i.introspect('dead');

    const text = await registry.metrics();
    expect(text).toContain('palisade_jwks_fetches_total{issuer="https://idp.test/",result="ok"} 2');
    expect(text).toContain('palisade_jwks_fetches_total{issuer="https://idp.test/",result="cooldown"} 1');
    expect(text).toContain('palisade_jwks_cache_hits_total{issuer="https://idp.test/"} 1');
    expect(text).toContain('palisade_jwks_keys{issuer="https://idp.test/"} 1');
    expect(text).toContain('palisade_token_cache_lookups_total{mechanism="jwt",result="hit"} 1');
    expect(text).toContain('palisade_token_cache_lookups_total{mechanism="jwt",result="miss"} 3');
    expect(text).toContain('palisade_token_cache_lookups_total{mechanism="introspection",result="hit"} 1');
    expect(text).toContain('palisade_introspection_requests_total{result="active"} 1');
    expect(text).toContain('palisade_introspection_requests_total{result="inactive"} 1');
    expect(text).toMatch(/palisade_jwks_fetch_duration_seconds_count\{issuer="https:\/\/idp.test\/"\} 2/);
    expect(text).not.toContain(t);
  });
});
