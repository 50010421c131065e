/**
 * Optional metric hooks of the authn stage. The stage calls these (cheaply,
 * synchronously); wiring them to Prometheus is one call at start-up:
 *
 *   authnServices(services).metrics = authnMetricsFrom(sidecarMetrics);
 *
 * Labels are bounded: the issuer is the one configured in the policy, never a
 * token's iss.
 */
import type { SidecarMetrics } from '../telemetry/metrics.ts';
import { HotCounter, type CounterSeries } from '../telemetry/hot-metrics.ts';

export type JwksFetchResult = 'ok' | 'error' | 'not_modified' | 'cooldown';

export interface AuthnMetrics {
  /** A JWKS fetch finished (or was skipped because of the cooldown: result "cooldown", seconds 0). */
  jwksFetch?(issuer: string, result: JwksFetchResult, seconds: number): void;
  /** A key for the token's kid was found in the cached JWKS, no fetch needed. */
  jwksCacheHit?(issuer: string): void;
  /** Keys now cached for the issuer. */
  jwksKeys?(issuer: string, keys: number): void;
  /** A lookup in the verified-token cache (jwt) or the introspection result cache. */
  tokenCache?(mechanism: 'jwt' | 'introspection', result: 'hit' | 'miss'): void;
  /** An introspection call finished. */
  introspection?(result: 'active' | 'inactive' | 'error', seconds: number): void;
}

type AuthnMetricParts = Pick<SidecarMetrics, 'jwksFetches' | 'jwksFetchDuration' | 'jwksCacheHits' | 'jwksKeys' | 'tokenCacheLookups' | 'introspectionRequests' | 'introspectionDuration'>;

/** Adapts the sidecar's prom-client metrics (src/telemetry/metrics.ts) to the hooks. */
export function authnMetricsFrom(m: AuthnMetricParts): AuthnMetrics {
  const tokenSeries: Record<string, CounterSeries | undefined> = {};
  return {
    jwksFetch(issuer, result, seconds) {
      m.jwksFetches.inc({ issuer, result });
      if (result !== 'cooldown') m.jwksFetchDuration.observe({ issuer }, seconds);
    },
    jwksCacheHit(issuer) {
      m.jwksCacheHits.inc({ issuer });
    },
    jwksKeys(issuer, keys) {
      m.jwksKeys.set({ issuer }, keys);
    },
    tokenCache(mechanism, result) {
      const c = m.tokenCacheLookups;
      // Per authenticated request: through the hot counter's series when it is one (four label sets).
      if (c instanceof HotCounter) (tokenSeries[`${mechanism}:${result}`] ??= c.series({ mechanism, result })).inc(1);
      else c.inc({ mechanism, result });
    },
    introspection(result, seconds) {
      m.introspectionRequests.inc({ result });
      m.introspectionDuration.observe(seconds);
    },
  };
}
