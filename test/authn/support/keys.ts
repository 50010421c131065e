/** Test signing keys and tokens, made with jose (real keys, real signatures). */
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

export interface TestKey {
  readonly kid: string;
  readonly alg: string;
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  /** Public JWK as a JWKS would serve it. */
  readonly jwk: JWK;
}

export async function makeKey(alg: 'RS256' | 'PS256' | 'ES256' | 'ES384' | 'EdDSA', kid = `${alg.toLowerCase()}-${randomUUID().slice(0, 8)}`, withAlg = true): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true, ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}) });
  const jwk = { ...(await exportJWK(publicKey)), kid, use: 'sig', ...(withAlg ? { alg } : {}) };
  return { kid, alg, privateKey, publicKey, jwk };
}

export interface SignOptions {
  /** Seconds from `now` (default 300). */
  readonly expiresIn?: number | null;
  readonly notBefore?: number;
  readonly issuedAt?: number;
  /** Epoch ms used as "now" for iat/exp (default Date.now()). */
  readonly now?: number;
  readonly header?: Record<string, unknown>;
  readonly kid?: string | null;
}

/** A signed JWT: iss/aud/sub defaults are the caller's to give in `claims`. */
export async function signToken(key: TestKey, claims: JWTPayload, o: SignOptions = {}): Promise<string> {
  const now = Math.floor((o.now ?? Date.now()) / 1000);
  const kid = o.kid === undefined ? key.kid : o.kid;
  const jwt = new SignJWT({ jti: randomUUID(), ...claims }).setProtectedHeader({ alg: key.alg, ...(kid ? { kid } : {}), typ: 'JWT', ...o.header });
  jwt.setIssuedAt(o.issuedAt ?? now);
  if (o.expiresIn !== null) jwt.setExpirationTime(now + (o.expiresIn ?? 300));
  if (o.notBefore !== undefined) jwt.setNotBefore(o.notBefore);
  return jwt.sign(key.privateKey);
}

export function b64url(v: string | Buffer | Uint8Array): string {
  return Buffer.from(v).toString('base64url');
}

/** A token with an arbitrary header and payload and a given signature (for forgeries). */
export function rawToken(header: Record<string, unknown>, payload: Record<string, unknown>, signature: string | Buffer = ''): string {
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}.${typeof signature === 'string' ? signature : b64url(signature)}`;
}
