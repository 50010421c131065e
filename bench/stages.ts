/**
 * Per-request cost of each stage of the full benchmark policy, in process:
 * the compiled stages run on a realistic request context (mTLS peer, JWT,
 * the 1 KB JSON body) many times; CPU microseconds per call. Complements
 * bench/run.ts, whose end-to-end figures include TLS, forwarding and the
 * decision sink, and are noisier on a shared machine.
 *
 * Then the sidecar's own work before it forwards, as the handler does it:
 * the request frame (path normalization, spec.headers, route, client address)
 * and the whole pipeline through the runner, on fresh contexts; this is what
 * issue 16's added-latency target (p50 <= +0.10 ms over the bare proxy)
 * leaves the sidecar, on top of a bare proxy's work.
 *
 * Contexts are prepared in small batches (BATCH) and timed batch by batch: a
 * run over 20,000 prepared contexts at once measured mostly the garbage
 * collector working through them (a third of the validation stage's figure).
 * The body is a plain Readable with the bytes pushed, as the HTTP parser
 * does for an IncomingMessage.
 *
 *   node bench/stages.ts [iterations] [block-entries]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createClientIpResolver } from '../src/http/client-ip.ts';
import { normalizePath } from '../src/http/normalize-path.ts';
import { runPipeline } from '../src/pipeline/runner.ts';
import { createLogger } from '../src/log/logger.ts';
import type { RequestContext, Stage, Verdict } from '../src/pipeline/types.ts';
import { loadPolicyFile } from '../src/policy/load.ts';
import { createServices } from '../src/sidecar/compose.ts';
import { CLIENT_SPIFFE_ID, fullPolicy, makeFixtures } from './lib/fixtures.ts';

const N = Number(process.argv[2] ?? 20000);
const BLOCKED = Number(process.argv[3] ?? 100_000);
const dir = mkdtempSync(join(tmpdir(), 'palisade-stages-'));
const fx = await makeFixtures(dir);
const { readFileSync } = await import('node:fs');
const jwks = readFileSync(fx.jwksFile);
const server = createServer((_q, r) => r.end(jwks));
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const jwksUri = `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks.json`;
writeFileSync(join(dir, 'policy.json'), fullPolicy(fx, jwksUri, BLOCKED));
const policy = await loadPolicyFile(join(dir, 'policy.json'), createServices(createLogger({ level: 'silent' })));

/** The body as the HTTP parser leaves it for a handler: a Readable with the bytes (and the end) pushed. */
function bodyOf(body: Buffer): Readable {
  const r = Object.assign(new Readable({ read() {} }), { complete: true });
  r.push(body);
  r.push(null);
  return r;
}

const peer = { spiffeId: CLIENT_SPIFFE_ID, subject: 'CN=bench-client', issuer: 'CN=Palisade Bench CA', serialNumber: '01', fingerprint256: 'AA:BB', validFrom: '', validTo: '' };
function ctx(i: number): RequestContext {
  const body = Buffer.from(fx.body);
  return {
    id: `r${i}`,
    traceId: null,
    start: process.hrtime.bigint(),
    receivedAt: Date.now(),
    method: 'POST',
    path: '/orders',
    query: '',
    host: 'localhost:8443',
    headers: { host: 'localhost:8443', 'content-type': 'application/json', 'content-length': String(body.length), authorization: `Bearer ${fx.tokens[i % fx.tokens.length]}`, 'user-agent': 'bench', accept: '*/*' },
    clientIp: '127.0.0.1',
    clientPort: 40000,
    serverIp: '127.0.0.1',
    serverPort: 8443,
    tls: { protocol: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384', sni: 'localhost', peer },
    policy,
    identity: null,
    route: policy.routeOf('POST', '/orders'),
    bytesIn: 0,
    body: null,
    bodyStream: bodyOf(body),
    responseTap: null,
    timings: [],
    wouldDeny: [],
    allowRule: null,
    responseHeaders: null,
  };
}

const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

async function runAll(c: RequestContext, upTo: number): Promise<Verdict | null> {
  for (const s of policy.stages.slice(0, upTo)) {
    let v = s.run(c);
    if (v instanceof Promise) v = await v;
    if (v.kind === 'deny' && !v.audit) return v;
  }
  return null;
}

// Warm up (JWKS fetch, JIT), and check the request passes every stage.
for (let i = 0; i < 2000; i++) {
  const d = await runAll(ctx(i), policy.stages.length);
  if (d) throw new Error(`the benchmark request is denied: ${JSON.stringify(d)}`);
}
const results: { stage: string; us: number }[] = [];
const BATCH = 200;
for (let k = 0; k < policy.stages.length; k++) {
  const stage = policy.stages[k] as Stage;
  let spent = 0;
  for (let done = 0; done < N; done += BATCH) {
    // Each stage runs on a context the stages before it have prepared (identity, route...).
    const contexts: RequestContext[] = [];
    for (let i = done; i < done + BATCH; i++) {
      const c = ctx(i);
      await runAll(c, k);
      contexts.push(c);
    }
    const t0 = cpuUs();
    for (const c of contexts) {
      const v = stage.run(c);
      if (v instanceof Promise) await v;
    }
    spent += cpuUs() - t0;
  }
  results.push({ stage: `${k}:${stage.name}`, us: spent / N });
}
// The request-level check that runs before any stage (spec.headers: duplicate singletons,
// method and path overrides) on the same, ordinary, headers.
{
  const reqs = Array.from({ length: N }, (_, i) => {
    const headers = ctx(i).headers;
    return { headers, raw: Object.entries(headers).flat() as string[] };
  });
  const t0 = cpuUs();
  for (const r of reqs) if (!policy.checkHeaders('POST', r.raw, r.headers).ok) throw new Error('the benchmark request is refused by spec.headers');
  results.unshift({ stage: 'request:headers', us: (cpuUs() - t0) / N });
}
console.log(`policy: ${BLOCKED} block entries; ${N} requests per stage; CPU microseconds per request`);
for (const r of results) console.log(`  ${r.stage.padEnd(28)} ${r.us.toFixed(2)}`);
console.log(`  ${'all stages'.padEnd(28)} ${results.reduce((a, r) => a + r.us, 0).toFixed(2)}`);

// What the handler does before it forwards: the request frame and the whole pipeline, through the runner.
{
  const clientIpOf = createClientIpResolver([]);
  const raw = Object.entries(ctx(0).headers).flat() as string[];
  let frame = 0;
  let pipeline = 0;
  for (let done = 0; done < N; done += BATCH) {
    const contexts: RequestContext[] = [];
    for (let i = done; i < done + BATCH; i++) contexts.push(ctx(i));
    let t0 = cpuUs();
    for (const c of contexts) {
      const np = normalizePath('/orders', { allowMatrixParams: policy.allowMatrixParams });
      if (!np.ok || !policy.checkHeaders('POST', raw, c.headers).ok) throw new Error('the benchmark request is refused before the stages');
      c.route = policy.routeOf('POST', np.path);
      if (clientIpOf('127.0.0.1', undefined) !== c.clientIp) throw new Error('client address');
    }
    frame += cpuUs() - t0;
    t0 = cpuUs();
    for (const c of contexts) {
      const r = await runPipeline(policy.stages, c);
      if (r.deny) throw new Error(`the benchmark request is denied: ${r.deny.code}`);
    }
    pipeline += cpuUs() - t0;
  }
  console.log(`before forwarding, as the handler does it (fresh contexts, batches of ${BATCH}):`);
  console.log(`  ${'request frame'.padEnd(28)} ${(frame / N).toFixed(2)}`);
  console.log(`  ${'pipeline (runner + stages)'.padEnd(28)} ${(pipeline / N).toFixed(2)}`);
  console.log(`  ${'total'.padEnd(28)} ${((frame + pipeline) / N).toFixed(2)}  (the added-latency target leaves 100 µs at p50)`);
}
server.close();
rmSync(dir, { recursive: true, force: true });
