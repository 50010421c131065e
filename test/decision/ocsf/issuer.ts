/**
 * A real token issuer for the OCSF tests: an ES256 key pair whose JWKS is
 * served over HTTP on loopback, and a signer for access tokens, so the
 * sidecar's authn stage verifies real JWTs end to end.
 */
import { createServer } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';

export const ISSUER = 'https://idp.test/';

export interface Issuer {
  readonly jwksUri: string;
  /** Signs `claims` with iss ISSUER, aud "orders", iat a minute ago and exp at `expSeconds` (epoch seconds). */
  sign(claims: Record<string, unknown>, expSeconds: number): Promise<string>;
  close(): Promise<void>;
}

/** A real issuer: an ES256 key whose JWKS is served on loopback. */
export async function startIssuer(): Promise<Issuer> {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  const server = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    jwksUri: `http://127.0.0.1:${port}/jwks`,
    sign: (claims: Record<string, unknown>, expSeconds: number) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(ISSUER).setAudience('orders').setIssuedAt(Math.floor(Date.now() / 1000) - 60).setExpirationTime(expSeconds).sign(privateKey),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

