/**
 * Per-request cost of the authn stage on a JWT: uncached (signature check on
 * every request: each token is new) vs cached (the same token again: SHA-256 +
 * LRU lookup). Runs the real stage compiled from a policy, against a real
 * JWKS server on loopback (fetched once, before timing).
 *
 *   node bench/authn-jwt.ts [iterations]
 */
import { createServer } from 'node:http';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { createLogger } from '../src/log/logger.ts';
import type { RequestContext, Stage, Verdict } from '../src/pipeline/types.ts';
import { compilePolicy, parsePolicyText, validatePolicy } from '../src/policy/load.ts';
import { createServices } from '../src/sidecar/compose.ts';

const N = Number(process.argv[2] ?? 2000);
const ISS = 'https://idp.bench/';
const ALGS = ['RS256', 'PS256', 'ES256', 'EdDSA'] as const;

const keys = await Promise.all(ALGS.map(async (alg) => ({ alg, kid: alg, ...(await generateKeyPair(alg, { extractable: true })) })));
const jwks = { keys: await Promise.all(keys.map(async (k) => ({ ...(await exportJWK(k.publicKey)), kid: k.kid, alg: k.alg, use: 'sig' }))) };
const server = createServer((_req, res) => res.end(JSON.stringify(jwks)));
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks`;

const text = `apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: bench }
spec:
  authentication:
    jwt:
      cacheMaxEntries: ${N * 2}
      issuers: [{ issuer: "${ISS}", jwksUri: "${url}", audiences: [api] }]
    defaultRequire: jwt
  authorization:
    rules: [{ id: all, paths: ["/**"], authenticated: true }]
`;
const { document, hash } = validatePolicy(parsePolicyText(text, 'bench'), 'bench');
const policy = await compilePolicy(document, hash, process.cwd(), createServices(createLogger({ level: 'silent' })));
const stage = policy.stages.find((s) => s.name === 'authn') as Stage;

/** The request facts the authn stage reads (the full context grows with other stages). */
function ctxFor(token: string): RequestContext {
  return {
    id: 'b', traceId: null, start: 0n, receivedAt: 0, method: 'GET', path: '/orders/1', query: '', host: 'localhost',
    headers: { authorization: `Bearer ${token}` }, clientIp: '127.0.0.1', clientPort: 1, serverIp: '127.0.0.1', serverPort: 2,
    tls: null, policy, identity: null, route: null, bytesIn: 0, body: null, timings: [], wouldDeny: [], allowRule: null, responseHeaders: null,
  } as Partial<RequestContext> as RequestContext;
}

/** Like the pipeline runner: awaits only a real promise (a cached token is judged synchronously). */
function run(ctx: RequestContext): Promise<void> | void {
  const v = stage.run(ctx);
  if (v instanceof Promise) return v.then(check);
  check(v);
}
function check(v: Verdict): void {
  if (v.kind !== 'continue') throw new Error(`denied: ${v.code}`);
}

function sign(k: (typeof keys)[number], i: number): Promise<string> {
  return new SignJWT({ sub: `user-${i}`, scope: 'orders:read orders:write', jti: `j-${k.alg}-${i}` })
    .setProtectedHeader({ alg: k.alg, kid: k.kid, typ: 'JWT' })
    .setIssuer(ISS)
    .setAudience('api')
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(k.privateKey);
}

const rows: string[] = [];
for (const k of keys) {
  const tokens = await Promise.all(Array.from({ length: N }, (_, i) => sign(k, i)));
  await run(ctxFor(await sign(k, -1))); // fetches the JWKS and imports the key: not timed
  const ctxs = tokens.map(ctxFor);
  // Each token is new (a signature check per request); best of 4 chunks, for the same reason as below.
  let uncachedUs = Infinity;
  let t0: bigint;
  const chunk = Math.ceil(N / 4);
  for (let c = 0; c < N; c += chunk) {
    const part = ctxs.slice(c, c + chunk);
    t0 = process.hrtime.bigint();
    for (const x of part) await run(x);
    uncachedUs = Math.min(uncachedUs, Number(process.hrtime.bigint() - t0) / 1000 / part.length);
  }
  const hot = ctxFor(tokens[0] as string);
  await run(hot);
  // Best of 5 rounds: the cached path is a few microseconds, so scheduler noise dominates single rounds.
  let cachedUs = Infinity;
  for (let round = 0; round < 5; round++) {
    t0 = process.hrtime.bigint();
    for (let i = 0; i < N * 10; i++) {
      const p = run(hot);
      if (p) await p;
    }
    cachedUs = Math.min(cachedUs, Number(process.hrtime.bigint() - t0) / 1000 / (N * 10));
  }
  rows.push(`| ${k.alg} | ${uncachedUs.toFixed(1)} | ${cachedUs.toFixed(2)} | ${(uncachedUs / cachedUs).toFixed(0)}x |`);
}
server.close();
process.stdout.write(`authn stage per request, ${N} requests each, node ${process.version}\n\n| alg | uncached (µs) | cached (µs) | ratio |\n| --- | --- | --- | --- |\n${rows.join('\n')}\n`);
