/**
 * The decision thread with the Kafka sink, alone in this process, at a fixed
 * rate: what each thread spends per record, read from /proc per thread (real
 * CPU, not a profile's wall-clock). The request thread's share is the
 * hand-over (write(), wireLine, postMessage); the decision thread's is
 * everything else (parse, OCSF encoding, kafkajs, compression, the stats
 * reports, its wake-ups); V8's helper threads do both heaps' concurrent GC.
 *
 *   node bench/kafka-thread.ts [--rate 2000] [--seconds 8] [--rounds 3] [--variant NAME:K=V,K=V ...] [--broker-pid PID]
 *   e.g. node bench/kafka-thread.ts --rate 3500 --variant l10:HANDOVER_LINGER_MS=10,HANDOVER_RECORDS=128 --variant l50:
 *
 * Records are the benchmark's allowed request (test/decision/ocsf/records.ts's
 * benchAllowRecord, eight identities shared as the sidecar shares them), written
 * once per millisecond as many as are due, as requests arrive. Each --variant
 * (default: one, the defaults) is a fresh sink with those PALISADE_* settings
 * (SINK=ndjson: the NDJSON sink writing to /dev/null, to tell the hand-over from Kafka's part;
 * HANDOVER_LINGER_MS and HANDOVER_RECORDS: the hand-over's linger and batch size)
 * (and any other environment the thread reads), on topics unique to the run;
 * rounds alternate the variants. After each round the sink is flushed and
 * every record must have been delivered. Also a round with no records (the
 * thread's idle cost per second). Needs the broker at PALISADE_KAFKA_BROKERS
 * (default 127.0.0.1:19092).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadSettings } from '../src/config/settings.ts';
import type { DecisionRecord } from '../src/decision/record.ts';
import { createWorkerSink, type WorkerSink } from '../src/decision/sinks/worker/sink.ts';
import { createLogger } from '../src/log/logger.ts';
import { benchAllowRecord } from '../test/decision/ocsf/records.ts';
import { BROKERS, deleteTopics, uniqueTopic } from '../test/decision/sinks/kafka/support.ts';

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
    variant: { type: 'string', multiple: true, default: [] },
    'broker-pid': { type: 'string' },
  },
});
const RATE = Number(args.rate);
const SECONDS = Number(args.seconds);
const ROUNDS = Number(args.rounds);
const variants = (args.variant.length ? args.variant : ['default:']).map((v) => {
  const [name, list = ''] = v.split(/:(.*)/s) as [string, string?];
  return { name, env: Object.fromEntries(list.split(',').filter(Boolean).map((kv) => kv.split(/=(.*)/s).slice(0, 2) as [string, string])) };
});

// The sidecar shares one identity object per caller, one TLS object per connection, one policy object.
const base = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => benchAllowRecord(i));
const records: DecisionRecord[] = Array.from({ length: 4096 }, (_, i) => {
  const r = benchAllowRecord(i);
  return { ...r, identity: base[i % 8]!.identity, tls: base[0]!.tls, policy: base[0]!.policy };
});

/**
 * --broker-pid: the broker's CPU too (a local broker's process, e.g. `pgrep -f kafka.Kafka`), as
 * "broker": what the produce requests cost on the other side (decompressing to validate,
 * appending), which a broker on the sidecar's machine takes from it. Any other client of the
 * same broker counts too: read it on a quiet broker.
 */
const BROKER_PID = args['broker-pid'];
function processCpu(pid: string): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100;
}

/** CPU seconds per thread name (summed over threads of the same name). */
function threadCpu(): Map<string, number> {
  const out = new Map<string, number>();
  if (BROKER_PID) out.set('broker', processCpu(BROKER_PID));
  for (const tid of readdirSync(`/proc/self/task`)) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(name, (out.get(name) ?? 0) + (Number(rest[11]) + Number(rest[12])) / 100);
    } catch {
      // ended meanwhile
    }
  }
  return out;
}

/** Writes RATE records per second for SECONDS (none with rate 0); returns records written. */
async function drive(sink: WorkerSink | null, rate: number): Promise<number> {
  const start = performance.now();
  const end = start + SECONDS * 1000;
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      const due = Math.min(Math.floor(((now - start) * rate) / 1000), Math.round(rate * SECONDS));
      while (sent < due) sink?.write(records[sent++ % records.length]!);
      if (now >= end) return resolve();
      setTimeout(tick, 1);
    };
    tick();
  });
  return sent;
}

const logger = createLogger({ level: 'warn' });
const topics: string[] = [];
const results = new Map<string, Map<string, number[]>>();
function note(variant: string, part: string, us: number): void {
  const v = results.get(variant) ?? new Map<string, number[]>();
  results.set(variant, v);
  v.set(part, [...(v.get(part) ?? []), us]);
}
try {
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? variants : [...variants].reverse();
    for (const v of order) {
      const saved = { ...process.env };
      Object.assign(process.env, v.env); // the thread inherits this process's environment when it starts
      const topic = uniqueTopic('thread');
      topics.push(topic);
      const settings = loadSettings({ PALISADE_KAFKA_BROKERS: BROKERS, PALISADE_KAFKA_TOPIC_DECISIONS: topic, PALISADE_KAFKA_TOPIC_BLOCKLIST: `${topic}-b`, PALISADE_KAFKA_TOPIC_ALERTS: `${topic}-a`, PALISADE_KAFKA_TOPIC_PARTITIONS: '3', ...v.env });
      // SINK=ndjson: the NDJSON sink to /dev/null instead, the same hand-over without Kafka (what Kafka adds).
      // HANDOVER_LINGER_MS / HANDOVER_RECORDS: the hand-over's linger and batch (sink.ts's lingerMs, batchRecords).
      const handover = {
        ...(v.env['HANDOVER_LINGER_MS'] ? { lingerMs: Number(v.env['HANDOVER_LINGER_MS']) } : {}),
        ...(v.env['HANDOVER_RECORDS'] ? { batchRecords: Number(v.env['HANDOVER_RECORDS']) } : {}),
      };
      const sink = await createWorkerSink({ spec: v.env['SINK'] === 'ndjson' ? { kind: 'ndjson', target: '/dev/null' } : { kind: 'kafka', settings }, logger, ...handover });
      process.env = saved;
      // Warm-up (topic creation, JIT), then idle and loaded windows.
      await drive(sink, RATE / 2);
      await sink.flush();
      for (const rate of [0, RATE]) {
        const t0 = threadCpu();
        const n = await drive(sink, rate);
        await sink.flush();
        const t1 = threadCpu();
        const per = (name: string) => (1e6 * ((t1.get(name) ?? 0) - (t0.get(name) ?? 0))) / (rate === 0 ? SECONDS : n);
        const unit = rate === 0 ? 'µs per second idle' : 'µs per record';
        const parts = ['MainThread', 'WorkerThread', 'V8Worker', 'libuv-worker', ...(BROKER_PID ? ['broker'] : [])];
        const total = [...t1.keys()].filter((k) => k !== 'broker').reduce((a, k) => a + per(k), 0);
        for (const p of parts) note(v.name, `${rate === 0 ? 'idle' : 'load'} ${p}`, per(p));
        note(v.name, `${rate === 0 ? 'idle' : 'load'} total`, total);
        process.stderr.write(`round ${round + 1} ${v.name} ${rate === 0 ? 'idle' : `${rate}/s`}: ${parts.map((p) => `${p} ${per(p).toFixed(1)}`).join(', ')}, total ${total.toFixed(1)} ${unit}\n`);
      }
      const s = sink.stats();
      await sink.close();
      if (s.dropped > 0 || s.delivered !== s.accepted) throw new Error(`${v.name}: accepted ${s.accepted}, delivered ${s.delivered}, dropped ${s.dropped}`);
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  process.stdout.write(`\nKafka sink in its thread at ${RATE} records/s, medians of ${ROUNDS} rounds (idle: µs of CPU per second with no record; load: µs per record):\n`);
  for (const [name, parts] of results) {
    process.stdout.write(`  ${name}: ${[...parts].map(([p, xs]) => `${p} ${med(xs).toFixed(1)}`).join(', ')}\n`);
    // The request thread's load figure includes this loop's own timer ticks, which the idle round measures alone.
    const handover = med(parts.get('load MainThread')!) - med(parts.get('idle MainThread')!) / RATE;
    process.stdout.write(`  ${name}: request thread's hand-over (load minus the idle round's ticks) ${handover.toFixed(1)} µs per record\n`);
  }
} finally {
  await deleteTopics(topics).catch(() => undefined);
}
