/**
 * The baseline proxy (its own process): a minimal fastify + @fastify/reply-from
 * over the same mTLS, streaming bodies through exactly as the sidecar does
 * (pass-through content-type parser), nothing else.
 *
 * env: BENCH_PORT, BENCH_UPSTREAM, BENCH_CERT, BENCH_KEY, BENCH_CA
 */
import { readFileSync } from 'node:fs';
import replyFrom from '@fastify/reply-from';
import Fastify from 'fastify';

const env = (k: string) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is required`);
  return v;
};
const app = Fastify({
  logger: false,
  keepAliveTimeout: 65_000,
  https: { cert: readFileSync(env('BENCH_CERT')), key: readFileSync(env('BENCH_KEY')), ca: readFileSync(env('BENCH_CA')), requestCert: true, rejectUnauthorized: true },
});
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
await app.register(replyFrom, { base: env('BENCH_UPSTREAM'), disableRequestLogging: true, undici: { connections: 128, pipelining: 1, keepAliveTimeout: 30_000 } });
app.all('/*', (_req, reply) => reply.from());
await app.listen({ host: '127.0.0.1', port: Number(env('BENCH_PORT')) });
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
