/**
 * JWKS entries and which algorithm each may verify. The key type must fit
 * the token's alg (RSA for RS/PS, the matching curve for ES, OKP for EdDSA):
 * this, with HMAC never allowed, is what closes the HS256-with-the-RSA-public-key
 * confusion. Keys are imported once per (key, alg) with jose and memoized on
 * the entry, which survives JWKS refreshes while the key is unchanged.
 */
import { importJWK, type CryptoKey, type JWK } from 'jose';

export interface KeyEntry {
  readonly kid: string | null;
  /** Public members only. */
  readonly jwk: Readonly<JWK>;
  /** Canonical text of the public key, to tell an unchanged key on refresh. */
  readonly fingerprint: string;
  /** Set when a refresh no longer lists the key: tokens verified with it leave the cache. */
  retired: boolean;
  readonly imported: Map<string, Promise<CryptoKey>>;
}

const PUBLIC_MEMBERS: Readonly<Record<string, readonly string[]>> = {
  RSA: ['n', 'e'],
  EC: ['crv', 'x', 'y'],
  OKP: ['crv', 'x'],
};

/** Which curve (or key type) each algorithm needs. */
function fits(jwk: Readonly<JWK>, alg: string): boolean {
  switch (alg) {
    case 'RS256':
    case 'RS384':
    case 'RS512':
    case 'PS256':
    case 'PS384':
    case 'PS512':
      return jwk.kty === 'RSA';
    case 'ES256':
      return jwk.kty === 'EC' && jwk.crv === 'P-256';
    case 'ES384':
      return jwk.kty === 'EC' && jwk.crv === 'P-384';
    case 'ES512':
      return jwk.kty === 'EC' && jwk.crv === 'P-521';
    case 'EdDSA':
      return jwk.kty === 'OKP' && (jwk.crv === 'Ed25519' || jwk.crv === 'Ed448');
    case 'Ed25519':
      return jwk.kty === 'OKP' && jwk.crv === 'Ed25519';
    default:
      return false;
  }
}

/** Parses one JWKS member into an entry, or null when it is not a usable public signing key. */
export function keyEntryOf(raw: unknown): KeyEntry | null {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return null;
  const j = raw as Record<string, unknown>;
  const kty = j['kty'];
  if (typeof kty !== 'string') return null;
  const members = PUBLIC_MEMBERS[kty];
  // "oct" (symmetric) keys are never used: a JWKS is public, an HMAC secret in it is no secret.
  if (!members) return null;
  if (j['use'] !== undefined && j['use'] !== 'sig') return null;
  if (j['key_ops'] !== undefined && !(Array.isArray(j['key_ops']) && j['key_ops'].includes('verify'))) return null;
  const jwk: Record<string, unknown> = { kty };
  for (const m of members) {
    if (typeof j[m] !== 'string') return null;
    jwk[m] = j[m];
  }
  if (j['alg'] !== undefined) {
    if (typeof j['alg'] !== 'string') return null;
    jwk['alg'] = j['alg'];
  }
  const kid = typeof j['kid'] === 'string' ? j['kid'] : null;
  return {
    kid,
    jwk: Object.freeze(jwk as JWK),
    fingerprint: JSON.stringify([kid, kty, ...members.map((m) => jwk[m]), jwk['alg'] ?? null]),
    retired: false,
    imported: new Map(),
  };
}

/** True when this key may verify a token signed with `alg`. */
export function usableFor(entry: KeyEntry, alg: string): boolean {
  if (entry.jwk.alg !== undefined && entry.jwk.alg !== alg) return false;
  return fits(entry.jwk, alg);
}

/** The key as a CryptoKey for `alg`, imported once. */
export function cryptoKeyFor(entry: KeyEntry, alg: string): Promise<CryptoKey> {
  let p = entry.imported.get(alg);
  if (p === undefined) {
    p = importJWK({ ...entry.jwk, alg }, alg) as Promise<CryptoKey>;
    // A key that cannot be imported (bad modulus...) is retried on the next token, not memoized as failed forever.
    p.catch(() => entry.imported.delete(alg));
    entry.imported.set(alg, p);
  }
  return p;
}
