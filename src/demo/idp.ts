/**
 * The demo's identity provider: an ES256 key, its JWKS served on loopback,
 * and tokens minted for sample users. Stands in for Keycloak/Auth0/Entra ID.
 */
import { createServer, type Server } from 'node:http';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from 'jose';

export interface DemoIdp {
  readonly issuer: string;
  readonly jwksUri: string;
  mint(sub: string, claims: Record<string, unknown>, ttlSeconds?: number): Promise<string>;
  close(): Promise<void>;
}

export async function startDemoIdp(audience: string): Promise<DemoIdp> {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'demo-1', alg: 'ES256', use: 'sig' };
  const server: Server = createServer((req, res) => {
    if (req.url === '/.well-known/jwks.json') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
      res.end(JSON.stringify({ keys: [jwk] }));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const issuer = `${base}/realms/demo`;
  const key: CryptoKey = privateKey;
  return {
    issuer,
    jwksUri: `${base}/.well-known/jwks.json`,
    mint: (sub, claims, ttlSeconds = 3600) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: 'demo-1', typ: 'JWT' })
        .setIssuer(issuer)
        .setAudience(audience)
        .setSubject(sub)
        .setIssuedAt()
        .setJti(crypto.randomUUID())
        .setExpirationTime(`${ttlSeconds}s`)
        .sign(key),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
