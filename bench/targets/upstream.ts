/**
 * Benchmark upstream (its own process): the same handler on plain HTTP (what
 * the proxies forward to) and on mTLS (the "direct" scenario), plus the JWKS
 * the sidecar fetches once. It reads the body and answers a small JSON.
 *
 * env: BENCH_HTTP_PORT, BENCH_TLS_PORT, BENCH_CERT, BENCH_KEY, BENCH_CA, BENCH_JWKS (file)
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';

const env = (k: string) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is required`);
  return v;
};
const jwks = readFileSync(env('BENCH_JWKS'));
const answer = Buffer.from(JSON.stringify({ id: '0f8fad5b-d9cb-469f-a165-70867728950e', status: 'open', total: 1234.5 }));

function handle(req: IncomingMessage, res: ServerResponse) {
  if (req.url === '/jwks.json') {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': jwks.length });
    res.end(jwks);
    return;
  }
  req.on('data', () => undefined);
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.length });
    res.end(answer);
  });
}

const plain = createServer({ keepAliveTimeout: 65_000 }, handle);
const tls = createTlsServer({ cert: readFileSync(env('BENCH_CERT')), key: readFileSync(env('BENCH_KEY')), ca: readFileSync(env('BENCH_CA')), requestCert: true, rejectUnauthorized: true, keepAliveTimeout: 65_000 }, handle);
plain.listen(Number(env('BENCH_HTTP_PORT')), '127.0.0.1');
tls.listen(Number(env('BENCH_TLS_PORT')), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
