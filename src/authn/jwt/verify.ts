/**
 * JWT verification for the policy's issuers. The issuer is picked from the
 * token's unverified iss; only then is the token verified, with that issuer's
 * keys, audiences and algorithm allow-list (never "none", never HMAC), so one
 * issuer's key can never vouch for another issuer's claims.
 *
 * Verified tokens are remembered by SHA-256 of (config fingerprint, token),
 * never by the token itself, until the token's exp, in a bounded LRU: a hot
 * client pays for one signature check, then a hash and a map lookup. A cached
 * verdict is dropped when its signing key leaves the JWKS, and is not served
 * from a key set past its lifetime: that lookup waits for the refetch (see
 * jwks-cache.ts), so a removed key stops vouching within the lifetime.
 */
import { createHash, hash } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import type { JwtIssuerSpec } from '../../policy/document.ts';
import { ASYMMETRIC_ALGORITHMS } from '../../policy/schema/authentication.ts';
import { deepFreeze } from '../../util/freeze.ts';
import { numberClaim, stringClaim, valuesOf } from '../claims.ts';
import { failure, type AuthnFailure, type TokenFacts, type TokenOutcome } from '../result.ts';
import type { AuthnServices } from '../services.ts';
import { failureOfJoseError } from './errors.ts';
import { jwksStateFor, type JwksState } from './jwks-cache.ts';
import { cryptoKeyFor, type KeyEntry } from './keys.ts';

const ASYMMETRIC: ReadonlySet<string> = new Set(ASYMMETRIC_ALGORITHMS);

export interface CachedJwt {
  readonly facts: TokenFacts;
  readonly key: KeyEntry;
}

interface CompiledIssuer {
  readonly spec: JwtIssuerSpec;
  readonly algorithms: ReadonlySet<string>;
  readonly jwks: JwksState;
}

export interface JwtVerifier {
  /** Synchronous on a cache hit; a promise when keys or a signature check are needed. */
  verify(token: string): TokenOutcome | Promise<TokenOutcome>;
}

export function createJwtVerifier(issuers: readonly JwtIssuerSpec[], fingerprint: string, svc: AuthnServices): JwtVerifier {
  const byIssuer = new Map<string, CompiledIssuer>();
  for (const spec of issuers) {
    byIssuer.set(spec.issuer, {
      spec,
      algorithms: new Set(spec.algorithms),
      // Lazily fetched: creating the state does no I/O.
      jwks: jwksStateFor(svc, spec.issuer, spec.jwksUri, {
        cacheMaxAgeMs: spec.jwks.cacheMaxAgeSeconds * 1000,
        cacheMinAgeMs: spec.jwks.cacheMinAgeSeconds * 1000,
        cooldownMs: spec.jwks.cooldownSeconds * 1000,
        timeoutMs: spec.jwks.timeoutMs,
      }),
    });
  }
  // One-shot hash of (config digest, token): cheaper than an incremental hash for inputs this small.
  const keyPrefix = `${createHash('sha256').update(fingerprint).digest('hex')}\n`;

  async function verifyFresh(token: string, cacheKey: string, now: number, arrival?: number): Promise<TokenOutcome> {
    let alg: unknown;
    let kid: unknown;
    let payload: JWTPayload;
    try {
      const header = decodeProtectedHeader(token);
      alg = header.alg;
      kid = header.kid;
      payload = decodeJwt(token);
    } catch {
      return failure('AUTHN_TOKEN_MALFORMED', 'the token is not a well-formed signed JWT');
    }
    if (token.split('.').length !== 3) return failure('AUTHN_TOKEN_MALFORMED', 'the token is not a compact signed JWT');
    if (typeof alg !== 'string') return failure('AUTHN_TOKEN_MALFORMED', 'the token header has no alg');
    if (kid !== undefined && typeof kid !== 'string') return failure('AUTHN_TOKEN_MALFORMED', 'the token header\'s kid is not a string');
    // "none" and HMAC are refused whatever the issuer: with a public JWKS, an HMAC "secret" is public.
    if (!ASYMMETRIC.has(alg)) return failure('AUTHN_ALGORITHM_FORBIDDEN', alg === 'none' ? 'unsigned tokens (alg none) are never accepted' : 'the token\'s signing algorithm is not allowed');
    const iss = payload.iss;
    const issuer = typeof iss === 'string' ? byIssuer.get(iss) : undefined;
    if (!issuer) return failure('AUTHN_ISSUER_UNKNOWN', typeof iss === 'string' ? 'the token\'s issuer is not trusted' : 'the token has no iss claim');
    if (!issuer.algorithms.has(alg)) return failure('AUTHN_ALGORITHM_FORBIDDEN', 'the token\'s signing algorithm is not allowed for its issuer');
    const keys = await issuer.jwks.keysFor(kid, alg, arrival);
    if (!Array.isArray(keys)) return keys as AuthnFailure;
    const spec = issuer.spec;
    let last: AuthnFailure = failure('AUTHN_TOKEN_INVALID', 'the token\'s signature does not verify');
    for (const key of keys as readonly KeyEntry[]) {
      let verified: JWTPayload;
      try {
        const cryptoKey = await cryptoKeyFor(key, alg);
        svc.stats.jwtVerifications++;
        verified = (
          await jwtVerify(token, cryptoKey, {
            issuer: spec.issuer,
            audience: [...spec.audiences],
            algorithms: [alg],
            clockTolerance: spec.clockSkewSeconds,
            currentDate: new Date(now),
            requiredClaims: ['exp'],
          })
        ).payload;
      } catch (err) {
        const mapped = failureOfJoseError(err);
        if (!mapped) {
          svc.logger.warn({ issuer: spec.issuer, err: (err as Error).message }, 'JWT verification error');
          last = failure('AUTHN_TOKEN_INVALID', 'the token could not be verified with the issuer\'s key');
          continue;
        }
        // Another candidate key (token without kid) may still verify it.
        if (mapped.code === 'AUTHN_TOKEN_INVALID' && keys.length > 1) {
          last = mapped;
          continue;
        }
        return mapped;
      }
      // jose checks iat only together with maxTokenAge; a token issued in the future is refused here.
      const iat = numberClaim(verified, 'iat');
      if (iat !== null && iat > now / 1000 + spec.clockSkewSeconds) return failure('AUTHN_TOKEN_NOT_YET_VALID', 'the token was issued in the future (iat)');
      const claims = deepFreeze(verified as Record<string, unknown>);
      const exp = numberClaim(claims, 'exp') as number;
      const facts: TokenFacts = Object.freeze({
        ok: true as const,
        method: 'jwt' as const,
        issuer: spec.issuer,
        subject: stringClaim(claims, 'sub'),
        clientId: stringClaim(claims, 'client_id') ?? stringClaim(claims, 'azp'),
        scopes: valuesOf(claims, spec.claims.scopes),
        groups: valuesOf(claims, spec.claims.groups),
        claims,
        tokenId: stringClaim(claims, 'jti'),
        expiresAt: exp,
      });
      svc.tokens.set(cacheKey, { facts, key }, exp * 1000, svc.now());
      return facts;
    }
    return last;
  }

  function cacheHit(hit: CachedJwt): TokenFacts {
    svc.stats.jwtCacheHits++;
    svc.metrics.tokenCache?.('jwt', 'hit');
    return hit.facts;
  }

  function miss(token: string, cacheKey: string, arrival?: number): Promise<TokenOutcome> {
    svc.tokens.delete(cacheKey);
    svc.metrics.tokenCache?.('jwt', 'miss');
    return verifyFresh(token, cacheKey, svc.now(), arrival);
  }

  return {
    verify(token) {
      const now = svc.now();
      const cacheKey = hash('sha256', keyPrefix + token, 'base64url');
      const hit = svc.tokens.get(cacheKey, now);
      if (hit !== undefined && !hit.key.retired) {
        const jwks = byIssuer.get(hit.facts.issuer ?? '')?.jwks;
        const arrival = jwks?.fetchSeq;
        const pending = jwks?.freshen() ?? null;
        if (pending === null) return cacheHit(hit);
        // The key set is past its lifetime: the verdict stands only if its key is still published.
        return pending.then(() => (hit.key.retired ? miss(token, cacheKey, arrival) : cacheHit(hit)));
      }
      return miss(token, cacheKey);
    },
  };
}
