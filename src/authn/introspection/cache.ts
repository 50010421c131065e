/**
 * Introspection with caching, per endpoint (kept in the services, so a policy
 * reload keeps it): an active result is reused until the earliest of the
 * token's exp and cacheMaxSeconds (short by default, so a revoked token stops
 * working quickly); an inactive one for inactiveCacheSeconds; an outage or
 * timeout is never cached and fails closed (AUTHN_INTROSPECTION_UNAVAILABLE).
 * Concurrent lookups of one token share one call. Keys are SHA-256 hashes of
 * (config fingerprint, token): the cache never holds a token.
 */
import { createHash, hash } from 'node:crypto';
import type { IntrospectionSpec } from '../../policy/document.ts';
import { deepFreeze } from '../../util/freeze.ts';
import { numberClaim, stringClaim, valuesOf } from '../claims.ts';
import { ExpiringLru } from '../lru.ts';
import { failure, type TokenFacts, type TokenOutcome } from '../result.ts';
import type { AuthnServices } from '../services.ts';
import { introspect, IntrospectionError, type IntrospectionClientConfig } from './client.ts';

export interface IntrospectionState {
  readonly cache: ExpiringLru<TokenOutcome>;
  readonly inflight: Map<string, Promise<TokenOutcome>>;
  /** Calls sent to this endpoint so far. */
  calls: number;
}

export interface Introspector {
  /** Synchronous on a cache hit. */
  introspect(token: string): TokenOutcome | Promise<TokenOutcome>;
}

export function introspectionStateFor(svc: AuthnServices, endpoint: string, clientId: string, maxEntries: number): IntrospectionState {
  const key = `${endpoint}\n${clientId}`;
  let st = svc.introspection.get(key);
  if (st) st.cache.resize(maxEntries);
  else {
    st = { cache: new ExpiringLru<TokenOutcome>(maxEntries), inflight: new Map(), calls: 0 };
    svc.introspection.set(key, st);
  }
  return st;
}

export function createIntrospector(spec: IntrospectionSpec, client: IntrospectionClientConfig, fingerprint: string, svc: AuthnServices): Introspector {
  const state = introspectionStateFor(svc, spec.endpoint, spec.clientId, spec.cacheMaxEntries);
  // One-shot hash of (config digest, token): cheaper than an incremental hash for inputs this small.
  const keyPrefix = `${createHash('sha256').update(fingerprint).digest('hex')}\n`;
  const skewMs = spec.clockSkewSeconds * 1000;
  const audiences = spec.audiences ? new Set(spec.audiences) : null;

  /** Judges an answer; returns the outcome and how long it may be reused (epoch ms; 0 = not at all). */
  function judge(doc: Record<string, unknown>, now: number): { outcome: TokenOutcome; until: number } {
    const inactiveUntil = now + spec.inactiveCacheSeconds * 1000;
    if (doc['active'] !== true) return { outcome: failure('AUTHN_TOKEN_INACTIVE', 'the token is not active'), until: inactiveUntil };
    const exp = numberClaim(doc, 'exp');
    if (exp !== null && exp * 1000 <= now - skewMs) return { outcome: failure('AUTHN_TOKEN_EXPIRED', 'the token has expired'), until: inactiveUntil };
    const nbf = numberClaim(doc, 'nbf');
    if (nbf !== null && nbf * 1000 > now + skewMs) return { outcome: failure('AUTHN_TOKEN_NOT_YET_VALID', 'the token is not valid yet (nbf)'), until: 0 };
    if (audiences) {
      const aud = doc['aud'];
      const list = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
      if (!list.some((a) => typeof a === 'string' && audiences.has(a))) {
        return { outcome: failure('AUTHN_AUDIENCE_MISMATCH', 'the token is not meant for this service (aud)'), until: inactiveUntil };
      }
    }
    const claims: Record<string, unknown> = { ...doc };
    delete claims['active'];
    deepFreeze(claims);
    const facts: TokenFacts = Object.freeze({
      ok: true as const,
      method: 'introspection' as const,
      issuer: stringClaim(claims, 'iss'),
      subject: stringClaim(claims, 'sub'),
      clientId: stringClaim(claims, 'client_id'),
      scopes: valuesOf(claims, spec.claims.scopes),
      groups: valuesOf(claims, spec.claims.groups),
      claims,
      tokenId: stringClaim(claims, 'jti'),
      expiresAt: exp,
    });
    const max = now + spec.cacheMaxSeconds * 1000;
    return { outcome: facts, until: spec.cacheMaxSeconds === 0 ? 0 : exp === null ? max : Math.min(max, exp * 1000) };
  }

  async function call(token: string, cacheKey: string): Promise<TokenOutcome> {
    state.calls++;
    svc.stats.introspectionCalls++;
    const t0 = performance.now();
    let doc: Record<string, unknown>;
    try {
      doc = await introspect(client, token);
    } catch (err) {
      const reason = err instanceof IntrospectionError ? err.reason : 'error';
      svc.logger.warn({ endpoint: spec.endpoint, reason, err: (err as Error).message }, 'token introspection failed; request refused');
      svc.metrics.introspection?.('error', (performance.now() - t0) / 1000);
      return failure('AUTHN_INTROSPECTION_UNAVAILABLE', 'the token could not be checked');
    }
    const now = svc.now();
    const { outcome, until } = judge(doc, now);
    svc.metrics.introspection?.(doc['active'] === true ? 'active' : 'inactive', (performance.now() - t0) / 1000);
    if (until > now) state.cache.set(cacheKey, outcome, until, now);
    return outcome;
  }

  return {
    introspect(token) {
      const cacheKey = hash('sha256', keyPrefix + token, 'base64url');
      const hit = state.cache.get(cacheKey, svc.now());
      if (hit !== undefined) {
        svc.stats.introspectionCacheHits++;
        svc.metrics.tokenCache?.('introspection', 'hit');
        return hit;
      }
      svc.metrics.tokenCache?.('introspection', 'miss');
      const pending = state.inflight.get(cacheKey);
      if (pending) return pending;
      const p = call(token, cacheKey).finally(() => state.inflight.delete(cacheKey));
      state.inflight.set(cacheKey, p);
      return p;
    },
  };
}
