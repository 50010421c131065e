/**
 * The Kafka-sink sidecar in two variants against the bare proxy, one target
 * at a time (not side by side as bench/ab.ts), in interleaved rounds: what a
 * change to the decision thread or the Kafka producer does to issue 16's two
 * figures, throughput at saturation and CPU per request at a fixed rate, each
 * as a ratio to the bare proxy of the same round.
 *
 *   node bench/kafka-ab.ts [BASE_CHECKOUT] [--env-this K=V ...] [--env-base K=V ...] [--node-this=--flag ...] [--node-base=--flag ...]
 *        [--rounds 6] [--seconds 6] [--connections 32] [--cpu-rate 2000 (0: closed loop only)] [--warmup 4] [--settle 2] [--pin]
 *
 * Why not bench/ab.ts: that one loads both versions at once on one core, so a
 * change in how the decision thread shares the core with the request thread
 * (its wake-ups, its priority) is hidden by the other sidecar's threads; and a
 * closed loop over both from one load generator measured the same req/s on
 * both sides. Here each target has the core (--pin: core 1; the load
 * generator and the upstream on core 0) to itself while it is measured, as in
 * bench/run.ts, and the rounds go through every order of the targets (ORDERS
 * below) so the machine's drift hits all alike. The decision topics and spools are the run's own
 * (bench/lib/kafka-sink.ts; the broker at PALISADE_KAFKA_BROKERS, default
 * 127.0.0.1:19092). The sidecars log at warn: a variant that gains speed by
 * falling behind shows it as "decision events dropped" lines in the output.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { fullPolicy, makeFixtures } from './lib/fixtures.ts';
import { kafkaSinkEnv } from './lib/kafka-sink.ts';
import { closedLoop, fixedRate, makePool, type RequestSpec } from './lib/load.ts';
import { freePort, startChild, waitFor, type Child } from './lib/proc.ts';
import { startBenchSidecar } from './lib/sidecar.ts';

const ROOT = resolve(import.meta.dirname, '..');
const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: 'string', default: '6' },
    seconds: { type: 'string', default: '6' },
    connections: { type: 'string', default: '32' },
    'cpu-rate': { type: 'string', default: '2000' },
    warmup: { type: 'string', default: '4' },
    settle: { type: 'string', default: '2' },
    'env-this': { type: 'string', multiple: true, default: [] },
    'env-base': { type: 'string', multiple: true, default: [] },
    'node-this': { type: 'string', multiple: true, default: [] },
    'node-base': { type: 'string', multiple: true, default: [] },
    pin: { type: 'boolean', default: false },
  },
});
function envOf(list: string[]): Record<string, string> {
  return Object.fromEntries(list.map((kv) => {
    const i = kv.indexOf('=');
    if (i <= 0) throw new Error(`--env-this/--env-base take NAME=VALUE, got ${kv}`);
    return [kv.slice(0, i), kv.slice(i + 1)];
  }));
}
const BASE = resolve(positionals[0] ?? '.');
const ROUNDS = Number(opts.rounds);
const SECONDS = Number(opts.seconds);
const CONNECTIONS = Number(opts.connections);
const CPU_RATE = Number(opts['cpu-rate']);
const WARMUP = Number(opts.warmup);
const log = (line: string) => process.stderr.write(line + '\n');
/**
 * Each round measures the three targets in another of the six orders: every target as often
 * first, second and third, after each of the others. With a fixed order the one measured
 * after another sidecar paid for that sidecar's work after its load ended (its Kafka flush,
 * V8's GC once idle) on the same pinned core: one variant measured 20-50% lower throughput in
 * every round, with the same code. --settle seconds of quiet before each measurement as well.
 */
const ORDERS = [[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 2, 1], [2, 1, 0], [1, 0, 2]] as const;
const SETTLE_MS = 1000 * Number(opts.settle);
const settle = () => new Promise((r) => setTimeout(r, SETTLE_MS));
function pin(pid: number | undefined, core: number): void {
  if (!opts.pin || pid === undefined) return;
  execFileSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' });
}

/** CPU seconds of a process's threads, summed by thread name (MainThread, WorkerThread, V8Worker...). */
function threadCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(name, (out.get(name) ?? 0) + (Number(rest[11]) + Number(rest[12])) / 100);
    } catch {
      // ended meanwhile
    }
  }
  return out;
}

interface Target {
  readonly name: 'bare' | 'this' | 'base';
  readonly child: Child;
  readonly pool: ReturnType<typeof makePool>;
  readonly admin?: string;
  readonly rps: number[];
  readonly cpu: number[];
  /** µs per request at the fixed rate by thread name, one entry per round. */
  readonly threads: Map<string, number[]>;
}

const dir = mkdtempSync(join(tmpdir(), 'palisade-kafka-ab-'));
const children: Child[] = [];
try {
  const fx = await makeFixtures(dir);
  const tls = { BENCH_CERT: fx.server.cert, BENCH_KEY: fx.server.key, BENCH_CA: fx.caFile };
  const [httpPort, tlsPort, barePort] = [await freePort(), await freePort(), await freePort()];
  const up = startChild('upstream', [join(ROOT, 'bench/targets/upstream.ts')], { ...tls, BENCH_HTTP_PORT: String(httpPort), BENCH_TLS_PORT: String(tlsPort), BENCH_JWKS: fx.jwksFile }, log);
  children.push(up);
  pin(process.pid, 0);
  pin(up.proc.pid, 0);
  const upstream = `http://127.0.0.1:${httpPort}`;
  await waitFor(async () => (await request(`${upstream}/jwks.json`)).statusCode === 200, 'upstream');
  const tlsOpts = { ca: fx.ca, cert: fx.client.cert, key: fx.client.key };
  const spec: RequestSpec = { method: 'POST', path: '/orders', body: fx.body, headers: (i) => ({ 'content-type': 'application/json', authorization: `Bearer ${fx.tokens[i % fx.tokens.length]}` }) };

  const bareChild = startChild('bare-proxy', [join(ROOT, 'bench/targets/bare-proxy.ts')], { ...tls, BENCH_PORT: String(barePort), BENCH_UPSTREAM: upstream }, log);
  children.push(bareChild);
  pin(bareChild.proc.pid, 1);
  const targets: Target[] = [{ name: 'bare', child: bareChild, pool: makePool(`https://127.0.0.1:${barePort}`, tlsOpts, CONNECTIONS), rps: [], cpu: [], threads: new Map() }];
  for (const [name, root, env, nodeArgs] of [['this', ROOT, envOf(opts['env-this']), opts['node-this']], ['base', BASE, envOf(opts['env-base']), opts['node-base']]] as const) {
    const s = await startBenchSidecar({ name: `kafka-${name}`, root, fx, upstream, policyText: fullPolicy(fx, `${upstream}/jwks.json`), env: { ...kafkaSinkEnv(dir, name), ...env }, nodeArgs, log });
    children.push(s.child);
    pin(s.child.proc.pid, 1);
    targets.push({ name, child: s.child, pool: makePool(s.origin, tlsOpts, CONNECTIONS), rps: [], cpu: [], threads: new Map() });
  }
  await waitFor(async () => (await closedLoop(targets[0]!.pool, spec, 1, 0.2)).non2xx === 0, 'bare proxy answering 2xx');
  log(`this: ${ROOT} ${[...opts['node-this'], ...opts['env-this']].join(' ')} | base: ${BASE} ${[...opts['node-base'], ...opts['env-base']].join(' ')}`);
  for (const t of targets) await closedLoop(t.pool, spec, CONNECTIONS, WARMUP);
  const rate: Record<string, number[]> = { bare: [], this: [], base: [] };
  for (let r = 0; r < ROUNDS; r++) {
    const order = ORDERS[r % ORDERS.length]!.map((i) => targets[i]!);
    for (const t of order) {
      await settle();
      const c0 = t.child.cpuSeconds();
      const res = await closedLoop(t.pool, spec, CONNECTIONS, SECONDS);
      const c1 = t.child.cpuSeconds();
      if (res.non2xx + res.errors > 0) throw new Error(`${t.name}: ${res.non2xx} non-2xx, ${res.errors} errors`);
      t.rps.push(res.rps);
      t.cpu.push((1e6 * (c1 - c0)) / res.requests);
      log(`round ${r + 1} closed ${CONNECTIONS}: ${t.name} ${res.rps.toFixed(0)} req/s, ${t.cpu.at(-1)!.toFixed(1)} µs/req, p99 ${res.p99.toFixed(1)} ms`);
    }
    for (const t of CPU_RATE > 0 ? order : []) {
      await settle();
      const [c0, th0] = [t.child.cpuSeconds(), threadCpu(t.child.proc.pid!)];
      const res = await fixedRate(t.pool, spec, CPU_RATE, SECONDS);
      const [c1, th1] = [t.child.cpuSeconds(), threadCpu(t.child.proc.pid!)];
      rate[t.name]!.push((1e6 * (c1 - c0)) / res.requests);
      for (const [name, s] of th1) t.threads.set(name, [...(t.threads.get(name) ?? []), (1e6 * (s - (th0.get(name) ?? 0))) / res.requests]);
      log(`round ${r + 1} at ${CPU_RATE} req/s: ${t.name} ${rate[t.name]!.at(-1)!.toFixed(1)} µs/req, p50 ${res.p50.toFixed(2)} ms, p99 ${res.p99.toFixed(1)} ms`);
    }
  }
  const med = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]! : NaN);
  // Ratio to the bare proxy of the same round, then the median over rounds.
  const ratio = (xs: number[], bare: number[]) => (xs.length ? med(xs.map((x, i) => x / bare[i]!)) : NaN);
  const [bare, self, base] = targets as [Target, Target, Target];
  process.stdout.write(`\nKafka sink, full policy, ${CONNECTIONS} connections${opts.pin ? ', pinned' : ''}; medians of ${ROUNDS} rounds (ratios per round to the bare proxy):\n`);
  const atRate = (xs: number[], text: string) => (CPU_RATE > 0 && xs.length ? text : '');
  process.stdout.write(`  bare proxy: ${med(bare.rps).toFixed(0)} req/s, ${med(bare.cpu).toFixed(1)} µs/req closed loop${atRate(rate['bare']!, `, ${med(rate['bare']!).toFixed(1)} µs/req at ${CPU_RATE} req/s`)}\n`);
  for (const t of [self, base]) {
    process.stdout.write(`  ${t.name}: ${med(t.rps).toFixed(0)} req/s (x${ratio(t.rps, bare.rps).toFixed(3)} of bare), ${med(t.cpu).toFixed(1)} µs/req closed loop${atRate(rate[t.name]!, `; at ${CPU_RATE} req/s ${med(rate[t.name]!).toFixed(1)} µs/req (x${ratio(rate[t.name]!, rate['bare']!).toFixed(3)} of bare)`)}\n`);
  }
  for (const t of CPU_RATE > 0 ? targets : []) {
    const parts = [...t.threads].map(([name, xs]) => [name, med(xs)] as const).filter(([, us]) => us >= 0.5).sort((a, b) => b[1] - a[1]);
    process.stdout.write(`  ${t.name} at ${CPU_RATE} req/s by thread (µs per request, medians): ${parts.map(([n, us]) => `${n} ${us.toFixed(1)}`).join(', ')}\n`);
  }
  process.stdout.write(`  this / base: throughput x${ratio(self.rps, base.rps).toFixed(3)}, CPU per request closed loop x${ratio(self.cpu, base.cpu).toFixed(3)}${atRate(rate['this']!, `, CPU at ${CPU_RATE} req/s x${ratio(rate['this']!, rate['base']!).toFixed(3)}`)}\n`);
} finally {
  for (const c of children.reverse()) await c.stop();
  rmSync(dir, { recursive: true, force: true });
}
