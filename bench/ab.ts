/**
 * A/B of the sidecar: this checkout against another one (the baseline),
 * both under the same load at the same time, so that the machine's drift
 * (10-30% between runs here) hits both alike.
 *
 *   git worktree add /tmp/base <commit> && ln -s "$PWD/node_modules" /tmp/base/node_modules
 *   node bench/ab.ts /tmp/base [--policy full|minimal] [--rounds 3] [--seconds 10] [--connections 8] [--phases 2] [--warmup 10] [--pin]
 *   git worktree remove --force /tmp/base
 *
 * --kafka: both sides with the Kafka decision sink as bench/run.ts's sidecar-full-kafka runs it
 * (bench/lib/kafka-sink.ts: topics and spool of their own; --env-this/--env-base apply over it).
 *
 * Or one checkout against itself with different settings (BASE = "."):
 *   node bench/ab.ts . --env-this PALISADE_DECISIONS_THREAD=worker --env-base PALISADE_DECISIONS_THREAD=main
 *
 * Each side gets its own keep-alive mTLS connections (closed loop) to its own
 * sidecar process; the load generator and the shared upstream run as in
 * bench/run.ts. The process started second measured 2-10% cheaper than the
 * first on this machine (the same pair of versions with the order swapped
 * showed it), so the run has phases with the start order swapped (two, or
 * --phases N, alternating), and the ratio reported is the geometric mean of
 * the phases (the order bias cancels). When the phases disagree on the
 * direction, it says so: the difference is within that run's noise (on a
 * slow, noisy host the order bias alone reached ±13%, and the same code on
 * both sides measured 11% apart: run an A/A first when the host seems off).
 * Prints, per round, each side's req/s, CPU µs per request (from /proc) and
 * p99, and at the end the corrected ratios. Short rounds are noisy (2 s
 * rounds: ±7% with the same code on both sides); keep the defaults.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { fullPolicy, makeFixtures, minimalPolicy, type Fixtures } from './lib/fixtures.ts';
import { closedLoop, makePool, type RequestSpec } from './lib/load.ts';
import { freePort, startChild, waitFor, type Child } from './lib/proc.ts';
import { kafkaSinkEnv } from './lib/kafka-sink.ts';
import { startBenchSidecar } from './lib/sidecar.ts';

const ROOT = resolve(import.meta.dirname, '..');
const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    policy: { type: 'string', default: 'full' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '10' },
    connections: { type: 'string', default: '8' },
    phases: { type: 'string', default: '2' },
    warmup: { type: 'string', default: '10' },
    'env-this': { type: 'string', multiple: true, default: [] },
    'env-base': { type: 'string', multiple: true, default: [] },
    pin: { type: 'boolean', default: false },
    kafka: { type: 'boolean', default: false },
  },
});
/** NAME=VALUE options -> an env object. */
function envOf(list: string[]): Record<string, string> {
  return Object.fromEntries(list.map((kv) => {
    const i = kv.indexOf('=');
    if (i <= 0) throw new Error(`--env-this/--env-base take NAME=VALUE, got ${kv}`);
    return [kv.slice(0, i), kv.slice(i + 1)];
  }));
}
const ENV = { this: envOf(opts['env-this']), base: envOf(opts['env-base']) };
const BASE = positionals[0];
if (!BASE) throw new Error('usage: node bench/ab.ts BASELINE_CHECKOUT [--policy full|minimal] [--rounds 3] [--seconds 10] [--connections 8]');
const ROUNDS = Number(opts.rounds);
const SECONDS = Number(opts.seconds);
const CONNECTIONS = Number(opts.connections);
const PHASES = Number(opts.phases);
/** Closed-loop warm-up of each phase's pair before its rounds, seconds. */
const WARMUP = Number(opts.warmup);
if (!Number.isInteger(PHASES) || PHASES < 2 || PHASES % 2 !== 0) throw new Error(`--phases takes an even number, at least 2 (each start order equally often); got ${opts.phases}`);
const log = (line: string) => process.stderr.write(line + '\n');

/**
 * --pin (issue 16's method, as in bench/run.ts): the load generator (this process) and the
 * upstream on core 0, both sidecars on core 1 (taskset, every thread), so they also compete
 * for one core as a pinned sidecar does with its decision thread.
 */
function pin(pid: number | undefined, core: number): void {
  if (!opts.pin || pid === undefined) return;
  execFileSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' });
}

interface Side {
  readonly label: 'this' | 'base';
  readonly child: Child;
  readonly pool: ReturnType<typeof makePool>;
}

async function startSide(fx: Fixtures, upstream: string, label: Side['label'], root: string, phase: number): Promise<Side> {
  const policyText = opts.policy === 'minimal' ? minimalPolicy() : fullPolicy(fx, `${upstream}/jwks.json`);
  const s = await startBenchSidecar({ name: `${label}-${phase}`, root, fx, upstream, policyText, env: { ...(opts.kafka ? kafkaSinkEnv(fx.dir, `${label}-${phase}`) : {}), ...ENV[label] }, log });
  pin(s.child.proc.pid, 1);
  return { label, child: s.child, pool: makePool(s.origin, { ca: fx.ca, cert: fx.client.cert, key: fx.client.key }, CONNECTIONS) };
}

const dir = mkdtempSync(join(tmpdir(), 'palisade-ab-'));
const children: Child[] = [];
try {
  const fx = await makeFixtures(dir);
  const [httpPort, tlsPort] = [await freePort(), await freePort()];
  const up = startChild('upstream', [join(ROOT, 'bench/targets/upstream.ts')], { BENCH_CERT: fx.server.cert, BENCH_KEY: fx.server.key, BENCH_CA: fx.caFile, BENCH_HTTP_PORT: String(httpPort), BENCH_TLS_PORT: String(tlsPort), BENCH_JWKS: fx.jwksFile }, log);
  children.push(up);
  pin(process.pid, 0);
  pin(up.proc.pid, 0);
  const upstream = `http://127.0.0.1:${httpPort}`;
  await waitFor(async () => (await request(`${upstream}/jwks.json`)).statusCode === 200, 'upstream');
  const spec: RequestSpec = { method: 'POST', path: '/orders', body: fx.body, headers: (i) => ({ 'content-type': 'application/json', authorization: `Bearer ${fx.tokens[i % fx.tokens.length]}` }) };
  const envText = (e: Record<string, string>) => (Object.keys(e).length ? ` with ${Object.entries(e).map(([k, v]) => `${k}=${v}`).join(' ')}` : '');
  log(`A/B, ${opts.policy} policy${opts.kafka ? ', Kafka sink' : ''}: this checkout (${ROOT})${envText(ENV.this)} vs base (${resolve(BASE)})${envText(ENV.base)}; ${CONNECTIONS} connections each, ${SECONDS} s rounds`);
  const phases: { cpu: number; rps: number }[] = [];
  const orders = Array.from({ length: PHASES }, (_, i): readonly [number, readonly Side['label'][]] => [i + 1, i % 2 === 0 ? ['this', 'base'] : ['base', 'this']]);
  for (const [phase, order] of orders) {
    const sides: Side[] = [];
    for (const label of order) {
      const s = await startSide(fx, upstream, label, label === 'this' ? ROOT : resolve(BASE), phase);
      children.push(s.child);
      sides.push(s);
    }
    const [first, second] = sides as [Side, Side];
    const thisSide = first.label === 'this' ? first : second;
    const baseSide = first.label === 'this' ? second : first;
    // Fresh processes: 4 s of warm-up left the first rounds 20-50% dearer on a slow host.
    await Promise.all(sides.map((s) => closedLoop(s.pool, spec, CONNECTIONS, WARMUP)));
    const cpuRatios: number[] = [];
    const rpsRatios: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const c0 = [thisSide.child.cpuSeconds(), baseSide.child.cpuSeconds()];
      const [rt, rb] = await Promise.all([closedLoop(thisSide.pool, spec, CONNECTIONS, SECONDS), closedLoop(baseSide.pool, spec, CONNECTIONS, SECONDS)]);
      const c1 = [thisSide.child.cpuSeconds(), baseSide.child.cpuSeconds()];
      const ut = (1e6 * (c1[0]! - c0[0]!)) / rt.requests;
      const ub = (1e6 * (c1[1]! - c0[1]!)) / rb.requests;
      if (rt.non2xx + rt.errors + rb.non2xx + rb.errors > 0) throw new Error('a side answered non-2xx or failed: fix the setup before comparing');
      cpuRatios.push(ut / ub);
      rpsRatios.push(rt.rps / rb.rps);
      log(`phase ${phase} (${order.join(' started before ')}), round ${r + 1}: this ${rt.rps.toFixed(0)} req/s, ${ut.toFixed(1)} µs/req, p99 ${rt.p99.toFixed(2)} ms | base ${rb.rps.toFixed(0)} req/s, ${ub.toFixed(1)} µs/req, p99 ${rb.p99.toFixed(2)} ms`);
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    phases.push({ cpu: med(cpuRatios), rps: med(rpsRatios) });
    for (const s of sides) {
      await s.pool.close();
      await s.child.stop();
    }
  }
  const geo = (xs: number[]) => Math.exp(xs.reduce((a, x) => a + Math.log(x), 0) / xs.length);
  const cpu = geo(phases.map((p) => p.cpu));
  const rps = geo(phases.map((p) => p.rps));
  const list = (k: 'cpu' | 'rps') => phases.map((p) => p[k].toFixed(3)).join(', ');
  // Odd phases started this side first, even ones the base.
  const bias = Math.sqrt(geo(phases.filter((_, i) => i % 2 === 0).map((p) => p.cpu)) / geo(phases.filter((_, i) => i % 2 === 1).map((p) => p.cpu)));
  // When the phases do not agree on the direction, the run cannot tell the two apart.
  const agree = (k: 'cpu' | 'rps') => phases.every((p) => p[k] < 1) || phases.every((p) => p[k] > 1);
  process.stdout.write(
    `\nA/B, ${opts.policy} policy (this / base, median round of each phase; geometric mean of the ${PHASES} phases, start orders alternating):\n` +
      `  CPU per request: ${cpu.toFixed(3)} (phases ${list('cpu')}): this checkout uses ${((1 - cpu) * 100).toFixed(1)}% ${cpu <= 1 ? 'less' : 'MORE'}${agree('cpu') ? '' : '; the phases disagree on the direction: within this run\'s noise'}\n` +
      `  throughput:      ${rps.toFixed(3)} (phases ${list('rps')})${agree('rps') ? '' : '; the phases disagree on the direction: within this run\'s noise'}\n` +
      `  order bias (how much cheaper the second-started process measured): ${((bias - 1) * 100).toFixed(1)}%\n`,
  );
} finally {
  for (const c of children.reverse()) await c.stop();
  rmSync(dir, { recursive: true, force: true });
}
