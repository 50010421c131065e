/**
 * What tracing costs the request path.
 *
 * 1. Per request, in process: the tracing calls the sidecar makes for one request
 *    (startRequest with a client traceparent, beginStages, injectUpstream, end with a
 *    three-stage decision), for tracing off, on with every request sampled and exported to a
 *    real OTLP/HTTP receiver on loopback, and on with ratio 0 (spans recorded, allowed
 *    requests discarded at the end, the deny-keeping path).
 * 2. End to end: the real sidecar (`palisade sidecar`, its own process) in front of a real
 *    upstream, driven over mTLS with keep-alive connections, in the same three modes:
 *    throughput, latency percentiles and the sidecar process's CPU time per request (from
 *    /proc: the figure that stays meaningful when other work shares the machine), same run,
 *    modes interleaved.
 *
 *   node bench/tracing.ts [seconds-per-mode] [concurrency]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as netServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Agent, request } from 'undici';
import type { DecisionRecord } from '../src/decision/record.ts';
import { createDevCa, writePem } from '../src/tls/dev-ca.ts';
import { startTracing, TRACING_OFF, type Tracing } from '../src/telemetry/tracing.ts';

const SECONDS = Number(process.argv[2] ?? 5);
const CONCURRENCY = Number(process.argv[3] ?? 16);
const ROOT = resolve(import.meta.dirname, '..');

// ---------------------------------------------------------------- a loopback OTLP/HTTP receiver
let spansReceived = 0;
const receiver: Server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { resourceSpans?: { scopeSpans?: { spans?: unknown[] }[] }[] };
    for (const rs of body.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spansReceived += ss.spans?.length ?? 0;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
const otlpUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;

// ---------------------------------------------------------------- 1. per-request API cost
const record: DecisionRecord = {
  id: 'x', requestId: 'r', traceId: null, time: 0, durationMs: 1.2, verdict: 'allow', decidedBy: 'forward', code: 'ALLOWED', rule: 'orders-read', wouldDeny: [], identity: null,
  client: { ip: '127.0.0.1', port: 1, forwardedFor: [] }, server: { ip: '127.0.0.1', port: 2 }, tls: null,
  request: { method: 'GET', path: '/orders/1', host: 'svc', scheme: 'https', httpVersion: '1.1', userAgent: null, contentType: null, route: '/orders/{orderId}', params: null, bytesIn: 0 },
  response: { status: 200, bytesOut: 10 },
  stages: [{ stage: 'blocklist', us: 1, outcome: 'continue' }, { stage: 'authn', us: 5, outcome: 'continue' }, { stage: 'authz', us: 2, outcome: 'continue' }],
  upstreamMs: 0.8, policy: { name: 'p', version: '1', hash: 'h' }, detail: null,
};

/** Exports what is queued; a bench queue this deep can hit the exporter's concurrency limit (spans lost, fine here). */
async function flush(tracing: Tracing): Promise<void> {
  try {
    await tracing.forceFlush();
  } catch {
    // counted as lost by the SDK; not part of what is measured
  }
}

function runRequests(tracing: Tracing, count: number): void {
  for (let i = 0; i < count; i++) {
    const rt = tracing.startRequest({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }, 'GET', 'https');
    rt.beginStages();
    rt.injectUpstream({ host: 'svc' });
    rt.end(record);
  }
}

/** ns per request of one timed batch (after a warm-up batch); the export runs after the timing. */
async function perRequest(make: () => Promise<Tracing>, n: number): Promise<number> {
  const tracing = await make();
  runRequests(tracing, n);
  await flush(tracing);
  const t0 = process.hrtime.bigint();
  runRequests(tracing, n);
  const ns = Number(process.hrtime.bigint() - t0) / n;
  await flush(tracing);
  await tracing.shutdown();
  return ns;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const N = 20_000;
const ROUNDS = 5;
const microModes: [string, () => Promise<Tracing>][] = [
  ['off', async () => TRACING_OFF],
  ['on, ratio 1 (every request exported)', () => startTracing({ endpoint: otlpUrl, sampleRatio: 1, respectParentSampled: false, serviceName: 'bench', upstream: 'http://127.0.0.1:8081', maxQueueSize: 1 << 18, exportBatchSize: 4096 })],
  ['on, ratio 0 (allowed: ids only, no spans)', () => startTracing({ endpoint: otlpUrl, sampleRatio: 0, respectParentSampled: false, serviceName: 'bench', upstream: 'http://127.0.0.1:8081' })],
];
console.log(`\n1. Tracing work per request (in process; median of ${ROUNDS} interleaved rounds of ${N}; Node ${process.version}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
const micro = new Map<string, number[]>(microModes.map(([l]) => [l, []]));
for (let round = 0; round < ROUNDS; round++) for (const [label, make] of microModes) micro.get(label)!.push(await perRequest(make, N));
for (const [label, xs] of micro) console.log(`  ${label.padEnd(46)} ${(median(xs) / 1000).toFixed(2).padStart(7)} us/request`);

// ---------------------------------------------------------------- 2. end to end
const dir = mkdtempSync(join(tmpdir(), 'palisade-bench-tracing-'));
const ca = await createDevCa('Bench CA');
const server = writePem(dir, 'server', await ca.issue({ commonName: 'sidecar', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], usage: 'server' }));
const clientPem = await ca.issue({ commonName: 'client', spiffeId: 'spiffe://bench.local/ns/shop/sa/web', usage: 'client' });
writeFileSync(join(dir, 'ca.crt'), ca.cert);
writeFileSync(
  join(dir, 'policy.yaml'),
  `apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: bench, version: "1" }
spec:
  authorization:
    roles: [{ name: web, subjects: [{ spiffeId: spiffe://bench.local/ns/shop/sa/web }] }]
    rules: [{ id: orders-read, methods: [GET], paths: ["/orders/{orderId}"], roles: [web] }]
`,
);

const upstream = createServer((_req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end('{"ok":true}');
});
upstream.keepAliveTimeout = 60_000;
await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
const upstreamUrl = `http://127.0.0.1:${(upstream.address() as { port: number }).port}`;

function freePort(): Promise<number> {
  return new Promise((r) => {
    const s = netServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => r(port));
    });
  });
}

async function startSidecar(env: Record<string, string>): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const admin = await freePort();
  const child = spawn(process.execPath, [join(ROOT, 'src/cli/main.ts'), 'sidecar'], {
    env: {
      ...process.env,
      PALISADE_POLICY: join(dir, 'policy.yaml'),
      PALISADE_LISTEN_HOST: '127.0.0.1',
      PALISADE_LISTEN_PORT: String(port),
      PALISADE_ADMIN_HOST: '127.0.0.1',
      PALISADE_ADMIN_PORT: String(admin),
      PALISADE_UPSTREAM: upstreamUrl,
      PALISADE_TLS_CERT: server.cert,
      PALISADE_TLS_KEY: server.key,
      PALISADE_TLS_CA: join(dir, 'ca.crt'),
      PALISADE_DECISIONS_FILE: join(dir, 'decisions.ndjson'),
      PALISADE_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${admin}/readyz`)).ok) return { child, port };
    } catch {
      // starting
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('sidecar did not become ready');
}

/** CPU seconds (user + system) the process has used so far, from /proc (Linux). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // Fields 14 and 15 of stat (utime, stime), in clock ticks; 100 per second on Linux.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function load(port: number, seconds: number, pid: number): Promise<{ rps: number; p50: number; p99: number; errors: number; cpuUsPerRequest: number }> {
  const agent = new Agent({ connections: CONCURRENCY, connect: { ca: ca.cert, cert: clientPem.cert, key: clientPem.key, servername: 'localhost' } });
  const lat: number[] = [];
  let errors = 0;
  const url = `https://127.0.0.1:${port}/orders/1`;
  const worker = async (until: number, record: boolean) => {
    while (performance.now() < until) {
      const t0 = performance.now();
      try {
        const res = await request(url, { dispatcher: agent });
        await res.body.dump();
        if (res.statusCode !== 200) errors++;
      } catch {
        errors++;
      }
      if (record) lat.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, () => worker(performance.now() + 1000, false))); // warm-up
  const start = performance.now();
  const cpu0 = cpuSeconds(pid);
  await Promise.all(Array.from({ length: CONCURRENCY }, () => worker(start + seconds * 1000, true)));
  const elapsed = (performance.now() - start) / 1000;
  const cpu = cpuSeconds(pid) - cpu0;
  await agent.close();
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? NaN;
  return { rps: lat.length / elapsed, p50: q(0.5), p99: q(0.99), errors, cpuUsPerRequest: (cpu / lat.length) * 1e6 };
}

console.log(`\n2. Sidecar end to end (own process, mTLS, keep-alive, ${CONCURRENCY} concurrent, ${SECONDS} s per mode, ${navigatorCores()} cores shared with the load generator)`);
const modes: [string, Record<string, string>][] = [
  ['off', {}],
  ['on, ratio 1 (every request exported)', { PALISADE_OTLP_ENDPOINT: otlpUrl, PALISADE_TRACE_SAMPLE_RATIO: '1' }],
  ['on, ratio 0.01 (denies kept)', { PALISADE_OTLP_ENDPOINT: otlpUrl, PALISADE_TRACE_SAMPLE_RATIO: '0.01', PALISADE_TRACE_RESPECT_PARENT: 'false' }],
];
const MACRO_ROUNDS = 3;
const macro = new Map<string, { rps: number; p50: number; p99: number; errors: number; cpuUsPerRequest: number; spans: number }[]>(modes.map(([l]) => [l, []]));
for (let round = 0; round < MACRO_ROUNDS; round++) {
  for (const [label, env] of modes) {
    const before = spansReceived;
    const { child, port } = await startSidecar(env);
    const r = await load(port, SECONDS, child.pid!);
    const exited = new Promise((res) => child.once('exit', res));
    child.kill('SIGTERM');
    await exited;
    macro.get(label)!.push({ ...r, spans: spansReceived - before });
  }
}
const summary = [...macro].map(([label, rs]) => ({ label, rps: median(rs.map((r) => r.rps)), p50: median(rs.map((r) => r.p50)), p99: median(rs.map((r) => r.p99)), cpu: median(rs.map((r) => r.cpuUsPerRequest)), errors: rs.reduce((n, r) => n + r.errors, 0), spans: rs.reduce((n, r) => n + r.spans, 0) }));
console.log(`  (median of ${MACRO_ROUNDS} interleaved rounds; load average now ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
for (const r of summary) console.log(`  ${r.label.padEnd(40)} ${r.rps.toFixed(0).padStart(7)} req/s   p50 ${r.p50.toFixed(2)} ms   p99 ${r.p99.toFixed(2)} ms   sidecar CPU ${r.cpu.toFixed(0)} us/request   errors ${r.errors}   spans received ${r.spans}`);
const off = summary[0]!;
for (const r of summary.slice(1)) {
  console.log(`  ${r.label}: sidecar CPU ${(r.cpu - off.cpu >= 0 ? '+' : '') + (r.cpu - off.cpu).toFixed(0)} us/request (${(((r.cpu - off.cpu) / off.cpu) * 100).toFixed(1)}%), throughput ${(((r.rps - off.rps) / off.rps) * 100).toFixed(1)}%, p50 ${(r.p50 - off.p50 >= 0 ? '+' : '') + (r.p50 - off.p50).toFixed(2)} ms, p99 ${(r.p99 - off.p99 >= 0 ? '+' : '') + (r.p99 - off.p99).toFixed(2)} ms vs off`);
}

function navigatorCores(): number {
  return (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator?.hardwareConcurrency ?? 0;
}

upstream.close();
receiver.close();
rmSync(dir, { recursive: true, force: true });
