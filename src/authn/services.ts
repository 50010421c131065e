/**
 * The authn stage's long-lived parts (src/pipeline/services.ts): JWKS caches
 * per issuer, the verified-token cache, introspection caches per endpoint,
 * counters and metric hooks. They survive policy reloads, so a reload keeps
 * warm keys and cached verdicts; nothing here does network I/O until a request
 * needs it.
 */
import type { Logger } from 'pino';
import { servicePart, type Services } from '../pipeline/services.ts';
import type { IntrospectionState } from './introspection/cache.ts';
import type { JwksState } from './jwt/jwks-cache.ts';
import type { CachedJwt } from './jwt/verify.ts';
import { ExpiringLru } from './lru.ts';
import type { AuthnMetrics } from './metrics.ts';

/** Running totals, for tests and `palisade` diagnostics (metrics go through `metrics`). */
export interface AuthnStats {
  /** Signature checks actually run (a verified-token cache hit does not count). */
  jwtVerifications: number;
  jwtCacheHits: number;
  /** JWKS fetch attempts, all issuers. */
  jwksFetches: number;
  /** Introspection calls sent. */
  introspectionCalls: number;
  introspectionCacheHits: number;
}

export interface AuthnServices {
  readonly logger: Logger;
  readonly now: () => number;
  /** By issuer + "\n" + jwksUri. */
  readonly jwks: Map<string, JwksState>;
  /** Verified JWTs by SHA-256 of (policy's jwt config fingerprint, token). */
  readonly tokens: ExpiringLru<CachedJwt>;
  /** By endpoint + "\n" + clientId. */
  readonly introspection: Map<string, IntrospectionState>;
  readonly stats: AuthnStats;
  /** Metric hooks; set at wiring time (authnMetricsFrom). */
  metrics: AuthnMetrics;
}

declare module '../pipeline/services.ts' {
  interface ServiceParts {
    authn: AuthnServices;
  }
}

export function authnServices(services: Services): AuthnServices {
  return servicePart(services, 'authn', () => ({
    logger: services.logger.child({ component: 'authn' }),
    now: services.now,
    jwks: new Map(),
    tokens: new ExpiringLru<CachedJwt>(10_000),
    introspection: new Map(),
    stats: { jwtVerifications: 0, jwtCacheHits: 0, jwksFetches: 0, introspectionCalls: 0, introspectionCacheHits: 0 },
    metrics: {},
  }));
}
