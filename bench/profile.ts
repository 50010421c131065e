/**
 * Where one target's time goes under load: runs it with --cpu-prof under the
 * benchmark's closed loop (bench/run.ts's request, 16 connections) and prints,
 * per thread, the busy time per request by source file and by function,
 * counted only while the load ran (not policy load, warm-up or shutdown).
 *
 *   node bench/profile.ts bare|minimal|full [--seconds 12] [--thread worker|main] [--sink ndjson|kafka] [--top 25] [--keep DIR] [--pin] [--rate 2000]
 *
 * --rate N: the measured load is open loop at N req/s (bench/run.ts's fixed-rate CPU
 * measurement) instead of the closed loop: where the time goes when requests arrive one by
 * one, each in its own turn of the event loop, rather than in batches at saturation.
 *
 * --sink kafka: the Kafka decision sink as bench/run.ts's sidecar-full-kafka runs it
 * (bench/lib/kafka-sink.ts; the broker at PALISADE_KAFKA_BROKERS, default 127.0.0.1:19092).
 *
 * Read the caveat in bench/lib/cpu-profile.ts: the times are wall-clock, so a
 * second busy thread or process shows up as longer system calls. The CPU per
 * request printed first comes from /proc and is the figure to compare.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { profileWindow } from './lib/cpu-profile.ts';
import { fullPolicy, makeFixtures, minimalPolicy } from './lib/fixtures.ts';
import { closedLoop, fixedRate, makePool, type RequestSpec } from './lib/load.ts';
import { freePort, startChild, waitFor, type Child } from './lib/proc.ts';
import { kafkaSinkEnv } from './lib/kafka-sink.ts';
import { startBenchSidecar } from './lib/sidecar.ts';

const ROOT = resolve(import.meta.dirname, '..');
const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    seconds: { type: 'string', default: '12' },
    thread: { type: 'string', default: 'worker' },
    sink: { type: 'string', default: 'ndjson' },
    top: { type: 'string', default: '25' },
    keep: { type: 'string' },
    pin: { type: 'boolean', default: false },
    rate: { type: 'string' },
  },
});
const RATE = opts.rate === undefined ? null : Number(opts.rate);
const TARGET = positionals[0];
if (TARGET !== 'bare' && TARGET !== 'minimal' && TARGET !== 'full') throw new Error('usage: node bench/profile.ts bare|minimal|full [--seconds 12] [--thread worker|main] [--top 25] [--keep DIR]');
if (opts.sink !== 'ndjson' && opts.sink !== 'kafka') throw new Error(`--sink takes ndjson or kafka, got ${opts.sink}`);
const SECONDS = Number(opts.seconds);
const TOP = Number(opts.top);
const log = (line: string) => process.stderr.write(line + '\n');
/** --pin: the load generator and the upstream on core 0, the target (every thread) on core 1, as npm run bench -- --pin. */
function pin(pid: number | undefined, core: number): void {
  if (!opts.pin || pid === undefined) return;
  execFileSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' });
}
const nowUs = () => Number(process.hrtime.bigint() / 1000n);
/**
 * CPU seconds of each thread of `pid` by thread id, with its name (from /proc: real CPU, unlike
 * the profiles' wall-clock times): the request thread, the decision thread, V8's GC helpers and
 * libuv's pool apart.
 */
function threadCpu(pid: number): Map<string, { name: string; s: number }> {
  const out = new Map<string, { name: string; s: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, { name: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), s: (Number(rest[11]) + Number(rest[12])) / 100 });
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

const dir = mkdtempSync(join(tmpdir(), 'palisade-profile-'));
const profiles = opts.keep ? resolve(opts.keep) : join(dir, 'profiles');
mkdirSync(profiles, { recursive: true });
const children: Child[] = [];
try {
  const fx = await makeFixtures(dir);
  const [httpPort, tlsPort, port] = [await freePort(), await freePort(), await freePort()];
  const tls = { BENCH_CERT: fx.server.cert, BENCH_KEY: fx.server.key, BENCH_CA: fx.caFile };
  const upstream = startChild('upstream', [join(ROOT, 'bench/targets/upstream.ts')], { ...tls, BENCH_HTTP_PORT: String(httpPort), BENCH_TLS_PORT: String(tlsPort), BENCH_JWKS: fx.jwksFile }, log);
  children.push(upstream);
  pin(process.pid, 0);
  pin(upstream.proc.pid, 0);
  const upstreamHttp = `http://127.0.0.1:${httpPort}`;
  await waitFor(async () => (await request(`${upstreamHttp}/jwks.json`)).statusCode === 200, 'upstream');
  const nodeArgs = ['--cpu-prof', `--cpu-prof-dir=${profiles}`];
  let child: Child;
  let origin: string;
  if (TARGET === 'bare') {
    child = startChild('bare-proxy', [...nodeArgs, join(ROOT, 'bench/targets/bare-proxy.ts')], { ...tls, BENCH_PORT: String(port), BENCH_UPSTREAM: upstreamHttp }, log);
    origin = `https://127.0.0.1:${port}`;
  } else {
    const policyText = TARGET === 'full' ? fullPolicy(fx, `${upstreamHttp}/jwks.json`) : minimalPolicy();
    const s = await startBenchSidecar({ name: TARGET, root: ROOT, fx, upstream: upstreamHttp, policyText, nodeArgs, env: { ...(opts.sink === 'kafka' ? kafkaSinkEnv(dir, `profile-${TARGET}`) : {}), PALISADE_DECISIONS_THREAD: opts.thread }, log });
    child = s.child;
    origin = s.origin;
  }
  children.push(child);
  pin(child.proc.pid, 1);
  const pool = makePool(origin, { ca: fx.ca, cert: fx.client.cert, key: fx.client.key }, 16);
  const spec: RequestSpec = { method: 'POST', path: '/orders', body: fx.body, headers: (i) => ({ 'content-type': 'application/json', authorization: `Bearer ${fx.tokens[i % fx.tokens.length]}` }) };
  await waitFor(async () => (await closedLoop(pool, spec, 1, 0.2)).non2xx === 0, `${TARGET} answering 2xx`);
  await closedLoop(pool, spec, 16, 4); // warm-up
  const [from, cpu0, threads0] = [nowUs(), child.cpuSeconds(), threadCpu(child.proc.pid!)];
  const r = RATE === null ? await closedLoop(pool, spec, 16, SECONDS) : await fixedRate(pool, spec, RATE, SECONDS);
  const [to, cpu1, threads1] = [nowUs(), child.cpuSeconds(), threadCpu(child.proc.pid!)];
  await pool.close();
  await child.stop(); // writes the profiles
  children.pop();
  if (r.non2xx + r.errors > 0) throw new Error(`${r.non2xx} non-2xx answers, ${r.errors} errors: fix the setup first`);

  const f1 = (us: number) => (us / r.requests).toFixed(2).padStart(8);
  process.stdout.write(`${TARGET}${TARGET === 'bare' ? '' : ` (${opts.sink} decision sink on the ${opts.thread} thread)`}${RATE === null ? '' : `, open loop at ${RATE} req/s`}: ${r.requests} requests in ${r.seconds.toFixed(1)} s, ${r.rps.toFixed(0)} req/s; CPU (/proc, all threads) ${((1e6 * (cpu1 - cpu0)) / r.requests).toFixed(1)} µs per request\n`);
  process.stdout.write('CPU per request by thread (/proc), thread id and name:\n');
  for (const [tid, t] of [...threads1].sort((a, b) => b[1].s - (threads0.get(b[0])?.s ?? 0) - (a[1].s - (threads0.get(a[0])?.s ?? 0)))) {
    const us = (1e6 * (t.s - (threads0.get(tid)?.s ?? 0))) / r.requests;
    if (us >= 0.05) process.stdout.write(`${us.toFixed(1).padStart(8)}  ${tid} ${t.name}\n`);
  }
  // One file per thread: CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile, thread 0 the main one.
  // `palisade sidecar` re-executes itself once (same pid, src/cli/node-flags.ts): the image
  // before that writes a profile of its own start, with nothing in the measured window.
  const files = readdirSync(profiles).filter((f) => f.endsWith('.cpuprofile') && f.includes(`.${child.proc.pid}.`)).sort();
  let shown = 0;
  for (const f of files) {
    const thread = f.split('.').at(-3) === '0' ? 'main thread' : `worker thread ${f.split('.').at(-3)}`;
    if (profileWindow(join(profiles, f), from, to, 'file').samples === 0) {
      log(`${f}: no samples in the measured window (skipped)`);
      continue;
    }
    shown++;
    for (const by of ['file', 'function'] as const) {
      const w = profileWindow(join(profiles, f), from, to, by);
      process.stdout.write(`\n${thread}, busy ${(w.busyUs / r.requests).toFixed(1)} µs per request (wall-clock), by ${by}:\n`);
      for (const [k, us] of w.byKey.slice(0, TOP)) process.stdout.write(`${f1(us)}  ${k}\n`);
    }
  }
  if (shown === 0) throw new Error(`none of ${files.join(', ') || 'no profile'} has samples in the measured window; are the profiles from this run?`);
  if (opts.keep) process.stderr.write(`profiles kept in ${profiles} (open them in Chrome DevTools or VS Code)\n`);
} finally {
  for (const c of children.reverse()) await c.stop();
  rmSync(dir, { recursive: true, force: true });
}
