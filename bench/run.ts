/**
 * End-to-end benchmark: what the sidecar costs, measured against the service
 * alone and against a bare proxy, in one run on one machine.
 *
 *   npm run bench -- [--only direct,bare-proxy,sidecar-minimal,sidecar-full[,sidecar-full-main-thread,sidecar-full-kafka,sidecar-full-kafka-main-thread]]
 *                    [--seconds 8] [--rounds 3]
 *                    [--connections 16] [--rate 1000] [--rate-seconds 10] [--rate-rounds 3] [--warmup 3] [--json FILE]
 *                    [--profile DIR] [--node-flags="--trace-gc ..."] [--keep]
 *
 * To measure a change against its baseline, use bench/ab.ts: both versions
 * under load at the same time, which this machine's drift cannot skew.
 *
 * Every target runs in its own process (the upstream, the bare proxy, the
 * sidecar); the load generator (undici, keep-alive mTLS) runs in this one.
 * All of them share the machine's cores, so the absolute figures say as much
 * about the load generator as about the targets: compare the ratios.
 *
 * Two measurements per scenario:
 *  - latency at a fixed rate (--rate, open loop, after a warm-up at that
 *    rate), to read the latency a target adds when it is not saturated;
 *    --rate-rounds rounds with the scenarios interleaved, the round with the
 *    median p99 reported (one hiccup of a shared machine moves a single
 *    10-second p99 by milliseconds);
 *  - throughput: a closed loop at a fixed concurrency, repeated --rounds
 *    times with the scenarios interleaved (the median round is reported).
 *
 * Scenarios are named entries of SCENARIOS below; add one to compare another
 * configuration (a Kafka sink, tracing on...) under the same load.
 *
 * --pin (issue 16's method): the load generator (this process) and the
 * upstream on core 0, the process under test on core 1 (taskset, every
 * thread), the same for every target, so contention is alike. The fixed-rate
 * rounds also give the target's CPU per request at that rate (issue 16's
 * primary figure, at --rate 2000), and each target's idle RSS is read after
 * its start, before any load.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { AUDIENCE, fullPolicy, makeFixtures, minimalPolicy, type Fixtures } from './lib/fixtures.ts';
import { closedLoop, fixedRate, makePool, type LoadResult, type RequestSpec } from './lib/load.ts';
import { freePort, selfCpuSeconds, startChild, waitFor, type Child } from './lib/proc.ts';
import { startBenchSidecar } from './lib/sidecar.ts';

const ROOT = resolve(import.meta.dirname, '..');

const { values: opts } = parseArgs({
  options: {
    only: { type: 'string' },
    seconds: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '16' },
    rate: { type: 'string', default: '1000' },
    'rate-seconds': { type: 'string', default: '10' },
    'rate-rounds': { type: 'string', default: '3' },
    warmup: { type: 'string', default: '3' },
    json: { type: 'string' },
    profile: { type: 'string' },
    keep: { type: 'boolean', default: false },
    'node-flags': { type: 'string', default: '' },
    pin: { type: 'boolean', default: false },
  },
});

/** --pin: every thread of `pid` onto one core (taskset -a: the threads it has already started too; later ones inherit). */
function pin(pid: number | undefined, core: number): void {
  if (!opts.pin || pid === undefined) return;
  execFileSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' });
}
/** --profile DIR: the proxies run with --cpu-prof, profiles written to DIR when they stop. */
const PROFILE = [...(opts.profile ? ['--cpu-prof', `--cpu-prof-dir=${resolve(opts.profile)}`] : []), ...opts['node-flags'].split(' ').filter(Boolean)];
const SECONDS = Number(opts.seconds);
const ROUNDS = Number(opts.rounds);
const CONNECTIONS = Number(opts.connections);
const RATE = Number(opts.rate);
const RATE_SECONDS = Number(opts['rate-seconds']);
const RATE_ROUNDS = Number(opts['rate-rounds']);
const WARMUP = Number(opts.warmup);

/** What every scenario gets: the fixtures and the shared upstream. */
interface BenchEnv {
  readonly fx: Fixtures;
  readonly upstreamHttp: string;
  readonly upstreamTlsPort: number;
  readonly upstream: Child;
  readonly log: (line: string) => void;
}

interface Target {
  /** https://127.0.0.1:port of the thing under test. */
  readonly origin: string;
  /** Its process (for RSS and CPU); the upstream for the direct scenario. */
  readonly child: Child;
  /** Stops it (not the shared upstream). */
  stop(): Promise<void>;
}

interface Scenario {
  readonly name: string;
  readonly summary: string;
  /** Run only when named in --only (comparisons that the default run leaves out). */
  readonly optional?: boolean;
  start(env: BenchEnv): Promise<Target>;
}

const tlsEnv = (fx: Fixtures) => ({ BENCH_CERT: fx.server.cert, BENCH_KEY: fx.server.key, BENCH_CA: fx.caFile });

async function tlsReady(origin: string, fx: Fixtures): Promise<boolean> {
  const pool = makePool(origin, { ca: fx.ca, cert: fx.client.cert, key: fx.client.key }, 1);
  try {
    const r = await pool.request({ method: 'GET', path: '/ready-probe' });
    await r.body.dump();
    return true;
  } finally {
    await pool.close();
  }
}

const SCENARIOS: readonly Scenario[] = [
  {
    name: 'direct',
    summary: 'the upstream itself over mTLS (no proxy)',
    async start(env) {
      return { origin: `https://127.0.0.1:${env.upstreamTlsPort}`, child: env.upstream, stop: async () => undefined };
    },
  },
  {
    name: 'bare-proxy',
    summary: 'minimal fastify + @fastify/reply-from, same mTLS, bodies streamed',
    async start(env) {
      const port = await freePort();
      const child = startChild('bare-proxy', [...PROFILE, join(ROOT, 'bench/targets/bare-proxy.ts')], { ...tlsEnv(env.fx), BENCH_PORT: String(port), BENCH_UPSTREAM: env.upstreamHttp }, env.log);
      const origin = `https://127.0.0.1:${port}`;
      await waitFor(() => tlsReady(origin, env.fx), 'bare proxy');
      return { origin, child, stop: () => child.stop() };
    },
  },
  {
    name: 'sidecar-minimal',
    summary: 'palisade sidecar with a one-rule policy (public route, no authn/JWT/validation/limits rules): the cost of the sidecar itself (normalization, decision records, metrics)',
    start: (env) => startSidecar(env, 'minimal', minimalPolicy()),
  },
  {
    name: 'sidecar-full',
    summary: 'palisade sidecar: mTLS + JWT (RS256, JWKS), RBAC, OpenAPI validation of the 1 KB body, 2 rate limits + global, 100,000 block entries, NDJSON decisions to a file',
    start: (env) => startSidecar(env, 'full', fullPolicy(env.fx, `${env.upstreamHttp}/jwks.json`)),
  },
  {
    name: 'sidecar-full-main-thread',
    summary: 'sidecar-full with the decision sink on the request thread (PALISADE_DECISIONS_THREAD=main) instead of its own thread',
    optional: true,
    start: (env) => startSidecar(env, 'full-main-thread', fullPolicy(env.fx, `${env.upstreamHttp}/jwks.json`), { PALISADE_DECISIONS_THREAD: 'main' }),
  },
  // With the Kafka sink (what production runs): needs the broker (bash deploy/kafka/broker.sh start)
  // at PALISADE_KAFKA_BROKERS (default 127.0.0.1:19092). Topics unique to the run (left on the broker).
  ...(['worker', 'main'] as const).map((thread): Scenario => ({
    name: thread === 'worker' ? 'sidecar-full-kafka' : 'sidecar-full-kafka-main-thread',
    summary: `sidecar-full with the Kafka sink (spool on disk), decision sink on the ${thread === 'worker' ? 'decision' : 'request'} thread`,
    optional: true,
    start: (env) => {
      const run = `bench-${process.pid}-${thread}`;
      const spool = join(env.fx.dir, `spool-${thread}`);
      mkdirSync(spool, { recursive: true });
      return startSidecar(env, `full-kafka-${thread}`, fullPolicy(env.fx, `${env.upstreamHttp}/jwks.json`), {
        PALISADE_DECISIONS_THREAD: thread,
        PALISADE_KAFKA_BROKERS: process.env['PALISADE_KAFKA_BROKERS'] || '127.0.0.1:19092',
        PALISADE_KAFKA_TOPIC_DECISIONS: `${run}-decisions`,
        PALISADE_KAFKA_TOPIC_BLOCKLIST: `${run}-blocklist`,
        PALISADE_KAFKA_TOPIC_ALERTS: `${run}-alerts`,
        PALISADE_SPOOL_DIR: spool,
        PALISADE_SPOOL_MAX_BYTES: String(4 * 1024 ** 3),
      });
    },
  })),
];

/** Starts `palisade sidecar` (the real CLI, its own process) with this policy text. */
async function startSidecar(env: BenchEnv, name: string, policyText: string, settings: Record<string, string> = {}): Promise<Target> {
  const s = await startBenchSidecar({ name, root: ROOT, fx: env.fx, upstream: env.upstreamHttp, policyText, nodeArgs: PROFILE, env: settings, log: env.log });
  return { origin: s.origin, child: s.child, stop: () => s.child.stop() };
}

interface Measured {
  readonly scenario: Scenario;
  readonly target: Target;
  readonly rounds: { result: LoadResult; targetCpu: number; upstreamCpu: number; loadgenCpu: number }[];
  fixed?: LoadResult;
  readonly fixedRounds: LoadResult[];
  /** Target CPU µs per request in each fixed-rate round. */
  readonly fixedCpuUs: number[];
  /** RSS right after the start (policy loaded, no traffic yet), MiB. */
  idleRssMiB: number;
}

const median = <T>(xs: T[], key: (x: T) => number): T => [...xs].sort((a, b) => key(a) - key(b))[Math.floor(xs.length / 2)] as T;
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '-');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-');
const f3 = (n: number) => (Number.isFinite(n) ? n.toFixed(3) : '-');

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}

async function main() {
  const selected = opts.only ? SCENARIOS.filter((s) => opts.only!.split(',').includes(s.name)) : SCENARIOS.filter((s) => !s.optional);
  if (selected.length === 0) throw new Error(`--only: no such scenario; known: ${SCENARIOS.map((s) => s.name).join(', ')}`);
  const log = (line: string) => process.stderr.write(line + '\n');
  const dir = mkdtempSync(join(tmpdir(), 'palisade-bench-'));
  const children: Child[] = [];
  try {
    const fx = await makeFixtures(dir);
    const [httpPort, tlsPort] = [await freePort(), await freePort()];
    const upstream = startChild('upstream', [join(ROOT, 'bench/targets/upstream.ts')], { ...tlsEnv(fx), BENCH_HTTP_PORT: String(httpPort), BENCH_TLS_PORT: String(tlsPort), BENCH_JWKS: fx.jwksFile }, log);
    children.push(upstream);
    pin(process.pid, 0);
    pin(upstream.proc.pid, 0);
    const upstreamHttp = `http://127.0.0.1:${httpPort}`;
    await waitFor(async () => (await request(`${upstreamHttp}/jwks.json`)).statusCode === 200, 'upstream');
    const env: BenchEnv = { fx, upstreamHttp, upstreamTlsPort: tlsPort, upstream, log };

    const spec: RequestSpec = {
      method: 'POST',
      path: '/orders',
      body: fx.body,
      headers: (i) => ({ 'content-type': 'application/json', authorization: `Bearer ${fx.tokens[i % fx.tokens.length]}` }),
    };
    log(`machine: ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; node ${process.version}`);
    log(`request: POST /orders, ${Buffer.byteLength(fx.body)} byte JSON body, Bearer JWT (RS256, aud ${AUDIENCE}), client certificate; ${CONNECTIONS} keep-alive connections`);

    const measured: Measured[] = [];
    for (const scenario of selected) {
      log(`starting ${scenario.name}: ${scenario.summary}`);
      const target = await scenario.start(env);
      if (target.child !== upstream) children.push(target.child);
      if (target.child !== upstream) pin(target.child.proc.pid, 1);
      // A moment for the start's garbage to be collected, then the idle RSS.
      await new Promise((r) => setTimeout(r, 2000));
      measured.push({ scenario, target, rounds: [], fixedRounds: [], fixedCpuUs: [], idleRssMiB: target.child.rssMiB() });
    }
    const pools = new Map(measured.map((m) => [m.scenario.name, makePool(m.target.origin, { ca: fx.ca, cert: fx.client.cert, key: fx.client.key }, Math.max(CONNECTIONS, 64))]));

    // Latency first, at the fixed rate, on targets warmed up at that rate: a
    // saturation test before it would leave heaps grown and GC pauses that a
    // service running at this rate does not have.
    for (let r = 0; r < RATE_ROUNDS; r++) {
      for (const m of measured) {
        const pool = pools.get(m.scenario.name)!;
        // Each round starts with a warm-up at the rate: the previous scenario's round left this target idle.
        const w = await fixedRate(pool, spec, RATE, WARMUP);
        if (w.non2xx > 0 || w.errors > 0 || w.requests === 0) throw new Error(`${m.scenario.name} does not answer 2xx to the benchmark request (${w.non2xx} non-2xx, ${w.errors} errors); fix the scenario before measuring`);
        const c0 = m.target.child.cpuSeconds();
        const f = await fixedRate(pool, spec, RATE, RATE_SECONDS);
        m.fixedCpuUs.push((1e6 * (m.target.child.cpuSeconds() - c0)) / Math.max(1, f.requests));
        m.fixedRounds.push(f);
        log(`fixed ${RATE} req/s round ${r + 1} ${m.scenario.name}: p50 ${f3(f.p50)} ms, p99 ${f3(f.p99)} ms, p99.9 ${f3(f.p999)} ms${f.errors || f.non2xx ? ` (${f.errors} errors, ${f.non2xx} non-2xx)` : ''}`);
      }
    }
    for (const m of measured) m.fixed = median(m.fixedRounds, (x) => x.p99);
    for (const m of measured) {
      const w = await closedLoop(pools.get(m.scenario.name)!, spec, CONNECTIONS, WARMUP);
      log(`warm-up ${m.scenario.name}: ${f1(w.rps)} req/s${w.non2xx || w.errors ? `, ${w.non2xx} non-2xx, ${w.errors} errors` : ''}`);
    }
    for (let r = 0; r < ROUNDS; r++) {
      for (const m of measured) {
        const cpu0 = [m.target.child.cpuSeconds(), upstream.cpuSeconds(), selfCpuSeconds()];
        const result = await closedLoop(pools.get(m.scenario.name)!, spec, CONNECTIONS, SECONDS);
        const cpu1 = [m.target.child.cpuSeconds(), upstream.cpuSeconds(), selfCpuSeconds()];
        const secs = result.seconds;
        m.rounds.push({ result, targetCpu: (cpu1[0]! - cpu0[0]!) / secs, upstreamCpu: (cpu1[1]! - cpu0[1]!) / secs, loadgenCpu: (cpu1[2]! - cpu0[2]!) / secs });
        log(`round ${r + 1} ${m.scenario.name}: ${f1(result.rps)} req/s, p50 ${f2(result.p50)} ms, p99 ${f2(result.p99)} ms`);
      }
    }
    await Promise.all([...pools.values()].map((p) => p.close()));

    const base = (name: string) => measured.find((m) => m.scenario.name === name);
    const direct = base('direct');
    const bare = base('bare-proxy');
    const rows: string[][] = [['scenario', 'req/s', 'p50 ms', 'p99 ms', 'p99.9 ms', '+p50 ms', '+p99 ms', 'vs direct', 'vs bare', 'peak RSS MiB', 'RSS at end MiB', 'CPU target', 'CPU upstream', 'CPU loadgen', 'target CPU us/req']];
    const rateRows: string[][] = [['scenario', 'p50 ms', 'p99 ms', 'p99.9 ms', '+p50 ms', '+p99 ms', '+p99.9 ms', 'achieved req/s', 'target CPU us/req', 'idle RSS MiB', 'p99 per round ms']];
    const json: Record<string, unknown>[] = [];
    for (const m of measured) {
      const mid = median(m.rounds, (x) => x.result.rps);
      const d = direct ? median(direct.rounds, (x) => x.result.rps).result : null;
      const b = bare ? median(bare.rounds, (x) => x.result.rps).result : null;
      const rss = m.target.child.peakRssMiB();
      const r = mid.result;
      rows.push([
        m.scenario.name,
        f1(r.rps),
        f2(r.p50),
        f2(r.p99),
        f2(r.p999),
        d ? f2(r.p50 - d.p50) : '-',
        d ? f2(r.p99 - d.p99) : '-',
        d ? `${((100 * r.rps) / d.rps).toFixed(0)}%` : '-',
        b ? `${((100 * r.rps) / b.rps).toFixed(0)}%` : '-',
        f1(rss),
        f1(m.target.child.rssMiB()),
        `${(100 * mid.targetCpu).toFixed(0)}%`,
        `${(100 * mid.upstreamCpu).toFixed(0)}%`,
        `${(100 * mid.loadgenCpu).toFixed(0)}%`,
        // CPU time per request is what contention on a shared machine distorts least.
        f1((1e6 * mid.targetCpu) / r.rps),
      ]);
      const fr = m.fixed!;
      const df = direct?.fixed ?? null;
      rateRows.push([m.scenario.name, f3(fr.p50), f3(fr.p99), f3(fr.p999), df ? f3(fr.p50 - df.p50) : '-', df ? f3(fr.p99 - df.p99) : '-', df ? f3(fr.p999 - df.p999) : '-', f1(fr.requests / fr.seconds), f1([...m.fixedCpuUs].sort((a, b) => a - b)[m.fixedCpuUs.length >> 1] ?? NaN), f1(m.idleRssMiB), m.fixedRounds.map((x) => f2(x.p99)).join(' / ')]);
      json.push({ scenario: m.scenario.name, summary: m.scenario.summary, throughput: { median: r, rounds: m.rounds.map((x) => x.result.rps), cpu: { target: mid.targetCpu, upstream: mid.upstreamCpu, loadgen: mid.loadgenCpu, targetUsPerRequest: (1e6 * mid.targetCpu) / r.rps } }, fixedRate: fr, fixedRateRounds: m.fixedRounds, fixedRateCpuUsPerRequest: m.fixedCpuUs, idleRssMiB: m.idleRssMiB, peakRssMiB: rss, rssAtEndMiB: m.target.child.rssMiB() });
    }
    const out: string[] = [];
    out.push(`\nthroughput: closed loop, ${CONNECTIONS} connections, ${SECONDS} s x ${ROUNDS} rounds interleaved (median round); CPU = cores used by each process during the round; peak RSS includes policy load`);
    out.push(table(rows));
    out.push(`\nlatency at a fixed ${RATE} req/s (open loop, ${RATE_SECONDS} s x ${RATE_ROUNDS} rounds interleaved, the round with the median p99; latency from the scheduled start; target CPU per request during those rounds, median; idle RSS after the start; p99 of every round in the last column)${opts.pin ? '; pinned: load generator and upstream on core 0, target on core 1' : ''}`);
    out.push(table(rateRows));
    const sc = base('sidecar-full');
    if (sc && bare && direct) {
      const sr = median(sc.rounds, (x) => x.result.rps).result.rps;
      const br = median(bare.rounds, (x) => x.result.rps).result.rps;
      const added = sc.fixed!.p99 - direct.fixed!.p99;
      out.push(`\ntargets: full-policy sidecar ${((100 * sr) / br).toFixed(0)}% of the bare proxy's throughput (target >= 70%): ${sr / br >= 0.7 ? 'met' : 'NOT met'}; added p99 at ${RATE} req/s ${f3(added)} ms (target < 1 ms): ${added < 1 ? 'met' : 'NOT met'}`);
      // Per-request CPU of the two processes: the ratio a CPU-bound deployment sees, and the one
      // this shared machine distorts least (throughput also depends on what the load generator gets).
      const cpuOf = (m: Measured) => {
        const mid = median(m.rounds, (x) => x.result.rps);
        return (1e6 * mid.targetCpu) / mid.result.rps;
      };
      out.push(`CPU per request: bare proxy ${f1(cpuOf(bare))} us, full-policy sidecar ${f1(cpuOf(sc))} us (bare/sidecar ${((100 * cpuOf(bare)) / cpuOf(sc)).toFixed(0)}%)`);
      const dec = join(dir, 'decisions', 'decisions-full.ndjson');
      out.push(`decisions written by the sidecar: ${(statSync(dec).size / 1024 / 1024).toFixed(1)} MiB of NDJSON`);
    }
    process.stdout.write(out.join('\n') + '\n');
    if (opts.json) writeFileSync(opts.json, JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: cpus().length, connections: CONNECTIONS, seconds: SECONDS, rounds: ROUNDS, rate: RATE, results: json }, null, 2));
  } finally {
    for (const c of children.reverse()) await c.stop();
    if (opts.keep) process.stderr.write(`kept ${dir} (decisions-*.ndjson have per-stage timings)\n`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

await main();
