/**
 * Optional metric hooks of the authn stage. The stage calls these (cheaply,
 * synchronously); wiring them to Prometheus is one call at start-up:
 *
 *   authnServices(services).metrics = authnMetricsFrom(sidecarMetrics);
 *
 * Labels are bounded: the issuer is the one configured in the policy, never a
 * token's iss.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { HotCounter, type CounterSeries } from '../telemetry/hot-metrics.ts';

/** Remote calls (JWKS, introspection), seconds. */
export const CALL_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

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

/** The authn stage's Prometheus metrics (registered by the sidecar's metrics, src/sidecar/metrics.ts). */
export interface AuthnMetricSet {
  readonly jwksFetches: Counter<'issuer' | 'result'>;
  readonly jwksFetchDuration: Histogram<'issuer'>;
  readonly jwksCacheHits: Counter<'issuer'>;
  readonly jwksKeys: Gauge<'issuer'>;
  readonly tokenCacheLookups: Counter<'mechanism' | 'result'>;
  readonly introspectionRequests: Counter<'result'>;
  readonly introspectionDuration: Histogram;
}

/** Declares the authn metrics on `r`; the small known label sets start at zero. */
export function createAuthnMetricSet(r: Registry): AuthnMetricSet {
  const jwksFetches = new Counter({ name: 'palisade_jwks_fetches_total', help: 'JWKS fetches by configured issuer and result (ok/error/not_modified/cooldown).', labelNames: ['issuer', 'result'] as const, registers: [r] });
  const jwksFetchDuration = new Histogram({ name: 'palisade_jwks_fetch_duration_seconds', help: 'Duration of JWKS fetches, seconds.', labelNames: ['issuer'] as const, buckets: [...CALL_BUCKETS], registers: [r] });
  const jwksCacheHits = new Counter({ name: 'palisade_jwks_cache_hits_total', help: 'Signing keys found in the cached JWKS without a fetch, by configured issuer.', labelNames: ['issuer'] as const, registers: [r] });
  const jwksKeys = new Gauge({ name: 'palisade_jwks_keys', help: 'Keys currently cached per configured issuer.', labelNames: ['issuer'] as const, registers: [r] });
  // One lookup per authenticated request: a hot counter (authnMetricsFrom keeps its series).
  const tokenCacheLookups = new HotCounter({ name: 'palisade_token_cache_lookups_total', help: 'Lookups in the verified-token caches, by mechanism (jwt/introspection) and result (hit/miss).', labelNames: ['mechanism', 'result'] as const, registers: [r] });
  const introspectionRequests = new Counter({ name: 'palisade_introspection_requests_total', help: 'OAuth2 token introspection calls by result (active/inactive/error).', labelNames: ['result'] as const, registers: [r] });
  const introspectionDuration = new Histogram({ name: 'palisade_introspection_duration_seconds', help: 'Duration of introspection calls, seconds.', labelNames: [], buckets: [...CALL_BUCKETS], registers: [r] });
  return { jwksFetches, jwksFetchDuration, jwksCacheHits, jwksKeys, tokenCacheLookups, introspectionRequests, introspectionDuration };
}

/** Zeroes the small known label sets (called where the sidecar zeroes its own, to keep the series order). */
export function zeroAuthnMetrics(m: AuthnMetricSet): void {
  for (const mechanism of ['jwt', 'introspection'] as const) for (const result of ['hit', 'miss'] as const) m.tokenCacheLookups.inc({ mechanism, result }, 0);
  for (const result of ['active', 'inactive', 'error'] as const) m.introspectionRequests.inc({ result }, 0);
}

/** Adapts the authn Prometheus metrics to the hooks. */
export function authnMetricsFrom(m: AuthnMetricSet): AuthnMetrics {
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
