/**
 * Benchmark of the Kafka decision sink (docs/kafka.md has the figures).
 *
 *   node bench/kafka.ts [--only sidecar|producer|rate] [--seconds 10] [--concurrency 32] [--rounds 3] [--events 200000]
 *                       [--thread worker|main|both] [--rate 2000] [--compression gzip,none] [--batch 500] [--linger 50]
 *
 * Scenarios:
 *   sidecar  The real `palisade sidecar` process with the full policy (bench/kafka-policy.yaml: mTLS
 *            authentication, block list, rate limit, RBAC) under a closed-loop mTLS load, three times:
 *            NDJSON sink (file), Kafka sink (broker up), Kafka sink with the broker unreachable (every
 *            event goes to the disk spool). Request throughput and latency percentiles, and the events
 *            that reached the sink's destination. --thread: where the sink runs
 *            (PALISADE_DECISIONS_THREAD; default worker, the sidecar's default); "both" runs
 *            every variant with each, interleaved, to compare them.
 *   producer The sink alone in this process: records written in a tight loop (kept within the memory
 *            buffer), measured until the broker acknowledged every one; gzip and no compression.
 *   rate     The sink alone, in a worker thread of its own (--thread main: in this one), at a fixed rate (--rate events/s, default 2000, written
 *            every 10 ms as the request thread hands them to the decision thread), the benchmark's
 *            real standard event (the full-policy request: mTLS + JWT + JSON POST, 8 identities as
 *            keys), for each combination of --compression, --batch and --linger (lists), interleaved
 *            rounds, medians. Prints per event: the process's CPU (all threads, including zlib's),
 *            the bytes the process wrote to the broker's socket (/proc/self/io wchar: request
 *            framing included); and the CPU of encoding alone (the part
 *            that is not Kafka's). One command for the study in docs/kafka.md:
 *              node bench/kafka.ts --only rate
 *
 * Needs the broker (bash deploy/kafka/broker.sh start) at PALISADE_KAFKA_BROKERS (default
 * 127.0.0.1:19092). Topics are unique per run and deleted at the end.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Agent, request } from 'undici';
import { loadSettings } from '../src/config/settings.ts';
import { decisionEncoder, encodeDecision } from '../src/decision/encode.ts';
import type { DecisionRecord } from '../src/decision/record.ts';
import { createKafkaSink } from '../src/decision/sinks/kafka/index.ts';
import { createLogger } from '../src/log/logger.ts';
import { createPki, loopbackSidecarEnv, startUpstream, until, type Pki, type Upstream } from '../test/support/harness.ts';
import { startSidecarProcess, type SidecarProcess } from '../test/support/sidecar-process.ts';
import { BROKERS, deleteTopics, makeRecord, topicCount, uniqueTopic } from '../test/decision/sinks/kafka/support.ts';
import { benchAllowRecord } from '../test/decision/ocsf/records.ts';

const { values: args } = parseArgs({
  options: {
    only: { type: 'string' },
    seconds: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '32' },
    events: { type: 'string', default: '200000' },
    rounds: { type: 'string', default: '3' },
    thread: { type: 'string', default: 'worker' },
    rate: { type: 'string', default: '2000' },
    compression: { type: 'string', default: 'gzip,none' },
    batch: { type: 'string', default: '500' },
    linger: { type: 'string', default: '50' },
  },
});
const THREADS = args.thread === 'both' ? ['main', 'worker'] : [args.thread];
if (!THREADS.every((t) => t === 'main' || t === 'worker')) throw new Error(`--thread: worker, main or both, not ${args.thread}`);
const SECONDS = Number(args.seconds);
const CONCURRENCY = Number(args.concurrency);
const EVENTS = Number(args.events);
const ROUNDS = Number(args.rounds);
const WARMUP_MS = 2000;
const IDENTITIES = 8;
const RATE = Number(args.rate);

const topics: string[] = [];
const dirs: string[] = [];
function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

// ---------------------------------------------------------------- sidecar scenarios

interface LoadResult {
  readonly requests: number;
  /** CPU time of the sidecar process per measured request, microseconds (user + system). */
  readonly cpuUs: number;
  readonly rps: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly errors: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function startSidecar(pki: Pki, upstream: Upstream, env: Record<string, string>): Promise<SidecarProcess> {
  return startSidecarProcess({
    PALISADE_POLICY: 'bench/kafka-policy.yaml',
    ...loopbackSidecarEnv(pki, upstream.url),
    PALISADE_LOG_LEVEL: 'info',
    ...env,
  });
}

async function stopSidecar(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

/** utime + stime of a process, milliseconds (Linux /proc; clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * Closed loop: CONCURRENCY workers, each one request at a time on its own keep-alive connection.
 * Besides latency, the sidecar's own CPU time per request: on a shared machine, wall-clock figures
 * move with everyone else's load, CPU per request much less.
 */
async function load(pki: Pki, base: string, pid: number): Promise<LoadResult> {
  const pems = await Promise.all(Array.from({ length: IDENTITIES }, (_, i) => pki.client(`spiffe://bench.local/ns/load/sa/c${i}`)));
  const agents = Array.from({ length: CONCURRENCY }, (_, i) => {
    const pem = pems[i % IDENTITIES]!;
    return new Agent({ connections: 1, connect: { ca: pki.ca.cert, cert: pem.cert, key: pem.key, servername: 'localhost', rejectUnauthorized: true } });
  });
  const latencies: number[] = [];
  let errors = 0;
  const start = Date.now();
  const measureFrom = start + WARMUP_MS;
  const end = measureFrom + SECONDS * 1000;
  let cpuStart = 0;
  const cpuTimer = setTimeout(() => (cpuStart = cpuMs(pid)), WARMUP_MS);
  let cpuEnd = 0;
  const cpuEndTimer = setTimeout(() => (cpuEnd = cpuMs(pid)), WARMUP_MS + SECONDS * 1000);
  await Promise.all(
    agents.map(async (agent, w) => {
      for (let seq = 0; Date.now() < end; seq++) {
        const t0 = process.hrtime.bigint();
        try {
          const res = await request(`${base}/items/${w}-${seq}`, { dispatcher: agent });
          await res.body.dump();
          if (res.statusCode !== 200) errors++;
        } catch {
          errors++;
        }
        if (Date.now() >= measureFrom) latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }),
  );
  clearTimeout(cpuTimer);
  clearTimeout(cpuEndTimer);
  if (cpuEnd === 0) cpuEnd = cpuMs(pid);
  await Promise.all(agents.map((a) => a.close()));
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    cpuUs: ((cpuEnd - cpuStart) * 1000) / Math.max(1, latencies.length),
    rps: latencies.length / SECONDS,
    p50: percentile(latencies, 50),
    p90: percentile(latencies, 90),
    p99: percentile(latencies, 99),
    max: latencies[latencies.length - 1] ?? NaN,
    errors,
  };
}

function countLines(file: string): number {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).length;
  } catch {
    return 0;
  }
}

function spooledEvents(dir: string): number {
  return readdirSync(dir)
    .filter((f) => f.startsWith('seg-'))
    .reduce((n, f) => n + countLines(join(dir, f)), 0);
}

interface Variant {
  readonly name: string;
  readonly note: string;
  /** Settings for one run, and how to count the events it left where they go. */
  prepare(): { env: Record<string, string>; events(): Promise<number> };
}

async function sidecarScenarios(): Promise<void> {
  const pki = await createPki(tempDir('palisade-bench-pki-'));
  const upstream = await startUpstream();
  const kafkaEnv = () => {
    const t = { d: uniqueTopic('bench-decisions'), b: uniqueTopic('bench-blocklist'), a: uniqueTopic('bench-alerts') };
    topics.push(t.d, t.b, t.a);
    return { PALISADE_KAFKA_TOPIC_DECISIONS: t.d, PALISADE_KAFKA_TOPIC_BLOCKLIST: t.b, PALISADE_KAFKA_TOPIC_ALERTS: t.a, PALISADE_SPOOL_DIR: tempDir('palisade-bench-spool-') };
  };
  const sinks: Variant[] = [
    {
      name: 'full policy, NDJSON sink (file)',
      note: 'in the file',
      prepare() {
        const file = join(tempDir('palisade-bench-ndjson-'), 'decisions.ndjson');
        return { env: { PALISADE_DECISIONS_FILE: file }, events: async () => countLines(file) };
      },
    },
    {
      name: 'full policy, Kafka sink (broker up)',
      note: 'on the topic',
      prepare() {
        const env = kafkaEnv();
        return { env: { ...env, PALISADE_KAFKA_BROKERS: BROKERS }, events: () => topicCount(env.PALISADE_KAFKA_TOPIC_DECISIONS) };
      },
    },
    {
      name: 'full policy, Kafka sink, broker down (spooling)',
      note: 'in the spool',
      prepare() {
        const env = kafkaEnv();
        // A spool large enough for the whole run (the default 200 MiB holds ~55,000 events): this
        // measures the cost of spooling, not the (counted) drops at the limit.
        return { env: { ...env, PALISADE_KAFKA_BROKERS: '127.0.0.1:1', PALISADE_KAFKA_CONNECT_TIMEOUT_MS: '500', PALISADE_SPOOL_MAX_BYTES: String(4 * 1024 ** 3) }, events: async () => spooledEvents(env.PALISADE_SPOOL_DIR) };
      },
    },
  ];
  const variants: Variant[] = THREADS.flatMap((thread) =>
    sinks.map((v) => ({
      name: THREADS.length > 1 ? `${v.name}, ${thread} thread` : v.name,
      note: v.note,
      prepare() {
        const run = v.prepare();
        return { env: { ...run.env, PALISADE_DECISIONS_THREAD: thread }, events: run.events };
      },
    })),
  );
  // Rounds interleave the variants, so that a change in the machine's background load hits all alike.
  const results = variants.map(() => [] as { r: LoadResult; events: number; requests: number }[]);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, v] of variants.entries()) {
      const run = v.prepare();
      const { child, base } = await startSidecar(pki, upstream, run.env);
      const before = upstream.requests.length;
      const r = await load(pki, base, child.pid!);
      await stopSidecar(child);
      results[i]!.push({ r, events: await run.events(), requests: upstream.requests.length - before });
      upstream.requests.length = 0; // the upstream keeps every request; not needed here
    }
  }
  await upstream.close();

  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const med = results.map((runs) => ({
    rps: median(runs.map((x) => x.r.rps)),
    p50: median(runs.map((x) => x.r.p50)),
    p90: median(runs.map((x) => x.r.p90)),
    p99: median(runs.map((x) => x.r.p99)),
    cpuUs: median(runs.map((x) => x.r.cpuUs)),
    errors: runs.reduce((n, x) => n + x.r.errors, 0),
    events: runs.reduce((n, x) => n + x.events, 0),
    requests: runs.reduce((n, x) => n + x.requests, 0),
  }));
  console.log(`\n## sidecar: ${CONCURRENCY} connections, ${IDENTITIES} mTLS identities, ${SECONDS} s after ${WARMUP_MS / 1000} s warm-up, median of ${ROUNDS} interleaved rounds; decision sink on the ${THREADS.join(' / ')} thread\n`);
  console.log('| scenario | req/s | p50 ms | p90 ms | p99 ms | sidecar CPU µs/request | errors | events / forwarded requests (all rounds, incl. warm-up) |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const [i, v] of variants.entries()) {
    const m = med[i]!;
    console.log(`| ${v.name} | ${m.rps.toFixed(0)} | ${m.p50.toFixed(2)} | ${m.p90.toFixed(2)} | ${m.p99.toFixed(2)} | ${m.cpuUs.toFixed(0)} | ${m.errors} | ${m.events} ${v.note} / ${m.requests} |`);
  }
  const b = med[0]!;
  console.log(`\nratios against "${variants[0]!.name}":`);
  for (const [i, v] of variants.entries()) {
    if (i === 0) continue;
    const m = med[i]!;
    console.log(`- ${v.name}: throughput ${(m.rps / b.rps).toFixed(2)}, p50 ${(m.p50 / b.p50).toFixed(2)}, p99 ${(m.p99 / b.p99).toFixed(2)}, CPU per request ${(m.cpuUs / b.cpuUs).toFixed(2)}`);
  }
}

// ---------------------------------------------------------------- producer on its own

async function producerScenario(compression: 'gzip' | 'none'): Promise<{ eps: number; seconds: number; bytesPerEvent: number; cpuUs: number }> {
  const s = loadSettings({
    PALISADE_KAFKA_BROKERS: BROKERS,
    PALISADE_KAFKA_TOPIC_DECISIONS: uniqueTopic('bench-producer'),
    PALISADE_KAFKA_TOPIC_BLOCKLIST: uniqueTopic('bench-blocklist'),
    PALISADE_KAFKA_TOPIC_ALERTS: uniqueTopic('bench-alerts'),
    PALISADE_KAFKA_COMPRESSION: compression,
    PALISADE_SPOOL_DIR: tempDir('palisade-bench-producer-spool-'),
  });
  topics.push(s.kafkaTopicDecisions, s.kafkaTopicBlocklist, s.kafkaTopicAlerts);
  const sink = await createKafkaSink(s, createLogger({ level: 'warn' }));
  // Records made beforehand: the loop measures the sink (encode, batch, produce), not the fixture.
  const records = Array.from({ length: 5000 }, (_, i) => makeRecord(i, `spiffe://bench.local/ns/load/sa/c${i % 64}`));
  const bytesPerEvent = records.slice(0, 100).reduce((n, r) => n + Buffer.byteLength(JSON.stringify(encodeDecision(r))), 0) / 100;
  // Warm-up: topics created, producer connected, JIT warm.
  for (let i = 0; i < 2000; i++) sink.write({ ...records[i % records.length]!, id: `${records[i % records.length]!.id.slice(0, 24)}${String(i).padStart(12, '0')}` });
  await sink.flush();
  const base = sink.stats().delivered;
  const cap = s.kafkaBufferEvents;
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < EVENTS; ) {
    // Keep the backlog inside the memory buffer (below the spill mark): the producer's own pace.
    const st = sink.stats();
    const room = Math.floor(cap / 2) - 1 - st.buffered;
    if (room <= 0) {
      await new Promise((r) => setImmediate(r));
      continue;
    }
    for (let k = 0; k < room && i < EVENTS; k++, i++) {
      const r = records[i % records.length]!;
      sink.write({ ...r, id: `${r.id.slice(0, 24)}${String(i).padStart(12, '0')}` });
    }
    await new Promise((r) => setImmediate(r));
  }
  await sink.flush();
  await until(() => sink.stats().delivered - base >= EVENTS, 120_000);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const st = sink.stats();
  await sink.close();
  if (st.dropped > 0 || st.spoolBytes > 0) throw new Error(`producer bench left dropped=${st.dropped} spoolBytes=${st.spoolBytes}`);
  // Main thread and libuv pool (gzip) alike: the process's CPU per acknowledged event.
  return { eps: EVENTS / seconds, seconds, bytesPerEvent, cpuUs: (cpu.user + cpu.system) / EVENTS };
}

async function producerScenarios(): Promise<void> {
  const runs = { gzip: [] as number[], none: [] as number[] };
  const cpu = { gzip: [] as number[], none: [] as number[] };
  let bytes = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of ['gzip', 'none'] as const) {
      const r = await producerScenario(c);
      runs[c].push(r.eps);
      cpu[c].push(r.cpuUs);
      bytes = r.bytesPerEvent;
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`\n## producer alone: ${EVENTS} events per run, acknowledged (acks=all, idempotent), median of ${ROUNDS} rounds; event JSON ${bytes.toFixed(0)} bytes\n`);
  console.log('| compression | events/s (median) | all runs | CPU µs/event (median) | events/s per CPU core |');
  console.log('| --- | ---: | --- | ---: | ---: |');
  for (const c of ['gzip', 'none'] as const) {
    const us = median(cpu[c]);
    console.log(`| ${c} | ${median(runs[c]).toFixed(0)} | ${runs[c].map((x) => x.toFixed(0)).join(', ')} | ${us.toFixed(1)} | ${(1e6 / us).toFixed(0)} |`);
  }
}

// ---------------------------------------------------------------- fixed rate, study of the settings

/** Bytes this process passed to write(2)-like calls so far (sockets included), from /proc/self/io. */
function wcharBytes(): number {
  const m = /^wchar: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'));
  return m ? Number(m[1]) : NaN;
}

interface RateResult {
  readonly cpuUs: number;
  readonly bytes: number;
  readonly events: number;
}

/** The benchmark's request, as records with unique ids (the sidecar's ids are UUIDv7, one per request). */
function benchRecords(n: number): DecisionRecord[] {
  return Array.from({ length: n }, (_, i) => benchAllowRecord(i));
}

async function rateScenario(c: { compression: string; batch: number; linger: number }, records: readonly DecisionRecord[]): Promise<RateResult> {
  const s = loadSettings({
    PALISADE_KAFKA_BROKERS: BROKERS,
    PALISADE_KAFKA_TOPIC_DECISIONS: uniqueTopic('bench-rate'),
    PALISADE_KAFKA_TOPIC_BLOCKLIST: uniqueTopic('bench-blocklist'),
    PALISADE_KAFKA_TOPIC_ALERTS: uniqueTopic('bench-alerts'),
    PALISADE_KAFKA_TOPIC_PARTITIONS: '6',
    PALISADE_KAFKA_COMPRESSION: c.compression,
    PALISADE_KAFKA_BATCH_SIZE: String(c.batch),
    PALISADE_KAFKA_LINGER_MS: String(c.linger),
    PALISADE_SPOOL_DIR: tempDir('palisade-bench-rate-spool-'),
  });
  topics.push(s.kafkaTopicDecisions, s.kafkaTopicBlocklist, s.kafkaTopicAlerts);
  const sink = await createKafkaSink(s, createLogger({ level: 'warn' }));
  const perTick = Math.max(1, Math.round(RATE / 100));
  let seq = 0;
  const writeTick = () => {
    for (let k = 0; k < perTick; k++, seq++) sink.write(records[seq % records.length]!);
  };
  // Warm-up at the same rate: topics created, producer connected, JIT warm.
  const warmEnd = Date.now() + WARMUP_MS;
  while (Date.now() < warmEnd) {
    writeTick();
    await new Promise((r) => setTimeout(r, 10));
  }
  await sink.flush();
  const base = sink.stats().delivered;
  const cpu0 = process.cpuUsage();
  const w0 = wcharBytes();
  const seq0 = seq;
  // Ticks scheduled on the clock, so a late tick catches up: the offered rate stays RATE.
  const t0 = Date.now();
  const end = t0 + SECONDS * 1000;
  let ticks = 0;
  while (Date.now() < end) {
    const due = Math.floor((Date.now() - t0) / 10) + 1;
    while (ticks < due) {
      writeTick();
      ticks++;
    }
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + ticks * 10 - Date.now())));
  }
  const events = seq - seq0;
  await sink.flush();
  await until(() => sink.stats().delivered - base >= events, 120_000);
  const cpu = process.cpuUsage(cpu0);
  const bytes = wcharBytes() - w0;
  const st = sink.stats();
  await sink.close();
  if (st.dropped > 0 || st.spoolBytes > 0) throw new Error(`rate bench left dropped=${st.dropped} spoolBytes=${st.spoolBytes}`);
  return { cpuUs: (cpu.user + cpu.system) / events, bytes: bytes / events, events };
}

/** CPU of serializing the event alone, microseconds per event: what any sink pays before Kafka. */
function encodeOnlyUs(records: readonly DecisionRecord[]): number {
  const encode = decisionEncoder('standard');
  let n = 0;
  for (let i = 0; i < 20_000; i++) n += encode(records[i % records.length]!).length;
  const c0 = process.cpuUsage();
  const N = 100_000;
  for (let i = 0; i < N; i++) n += encode(records[i % records.length]!).length;
  const c = process.cpuUsage(c0);
  if (n === 0) throw new Error('nothing encoded');
  return (c.user + c.system) / N;
}

/** One rate run where the sink runs in production: a worker thread of its own (--thread worker) or this thread. */
async function rateRun(c: { compression: string; batch: number; linger: number }, records: readonly DecisionRecord[], thread: string): Promise<RateResult> {
  if (thread === 'main') return rateScenario(c, records);
  const w = new Worker(new URL(import.meta.url), { argv: process.argv.slice(2), workerData: { rate: c } });
  const msg = await new Promise<{ result: RateResult; topics: string[] } | { error: string; topics?: string[] }>((resolve) => {
    w.once('message', resolve);
    w.once('error', (err) => resolve({ error: String(err.stack ?? err) }));
    w.once('exit', (code) => resolve({ error: `rate worker exited (${code}) without a result` }));
  });
  await w.terminate();
  topics.push(...(msg.topics ?? []));
  if ('error' in msg) throw new Error(msg.error);
  return msg.result;
}

async function rateScenarios(): Promise<void> {
  const list = (v: string | undefined) => (v ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  const configs = list(args.compression).flatMap((compression) =>
    list(args.batch).flatMap((b) => list(args.linger).map((l) => ({ compression, batch: Number(b), linger: Number(l) }))),
  );
  const records = benchRecords(4096);
  const eventBytes = records.slice(0, 64).reduce((n, r) => n + Buffer.byteLength(decisionEncoder('standard')(r)), 0) / 64;
  const results = configs.map(() => [] as RateResult[]);
  const encode: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    encode.push(encodeOnlyUs(records));
    for (const [i, c] of configs.entries()) results[i]!.push(await rateRun(c, records, THREADS[0]!));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const enc = median(encode);
  console.log(`\n## Kafka sink alone at ${RATE} events/s on the ${THREADS[0]} thread, ${SECONDS} s after ${WARMUP_MS / 1000} s warm-up, median of ${ROUNDS} interleaved rounds`);
  console.log(`the benchmark's standard event: ${eventBytes.toFixed(0)} bytes of JSON; encoding it alone: ${enc.toFixed(1)} µs CPU\n`);
  console.log('| compression | batch | linger ms | CPU µs/event (all runs) | of which Kafka (minus encoding) | bytes written/event |');
  console.log('| --- | ---: | ---: | --- | ---: | ---: |');
  for (const [i, c] of configs.entries()) {
    const rs = results[i]!;
    const cpu = median(rs.map((r) => r.cpuUs));
    console.log(`| ${c.compression} | ${c.batch} | ${c.linger} | ${cpu.toFixed(1)} (${rs.map((r) => r.cpuUs.toFixed(1)).join(', ')}) | ${(cpu - enc).toFixed(1)} | ${median(rs.map((r) => r.bytes)).toFixed(0)} |`);
  }
}

if (!isMainThread && (workerData as { rate?: unknown } | null)?.rate) {
  // A rate run in its own thread, as the sidecar's decision thread: result and topics to the parent.
  try {
    const result = await rateScenario((workerData as { rate: { compression: string; batch: number; linger: number } }).rate, benchRecords(4096));
    parentPort!.postMessage({ result, topics });
  } catch (err) {
    parentPort!.postMessage({ error: String((err as Error).stack ?? err), topics });
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
} else {
  try {
    if (args.only === 'rate') await rateScenarios();
    else {
      if (args.only !== 'producer') await sidecarScenarios();
      if (args.only !== 'sidecar') await producerScenarios();
    }
  } finally {
    await deleteTopics(topics);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}
