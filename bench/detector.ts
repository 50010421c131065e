/**
 * Benchmark of the detector (docs/detector.md has the figures). Prints, never asserts.
 *
 *   node bench/detector.ts [--only engine|mistake|kafka|e2e] [--seed 7] [--clients 400] [--minutes 30]
 *                          [--attacks 60] [--events 200000] [--floods 20] [--guard on|off]
 *
 * engine  A seeded generator of labelled traffic (benign profiles plus injected attacks) as the
 *         decision events a sidecar would publish: OCSF-encoded, JSON round trip, decoded with
 *         recordFromOcsf, then fed to the engine in this process (simulated time). Precision and
 *         recall over clients, benign clients blocked, time to block per attack kind (event time,
 *         from the attack's first request to the block decision), and events/second/core of the
 *         engine (and of JSON.parse + recordFromOcsf, the per-event decode cost of the service).
 *         --guard off runs it without the blast-radius guard and the caps, for the guard's cost.
 * mistake The policy-mistake and issuer-incident scenarios on the same seeded traffic: from minute 10
 *         every request is denied (a new policy whose rules match no client: 403 under a new policy
 *         hash; then every token refused as expired: 401) while floods keep coming; benign clients
 *         blocked (must be 0), guard alerts, suppressed blocks, floods blocked.
 * kafka   End to end through Kafka: OCSF events produced to a decisions topic, then consumed by the
 *         detector service (consumer group, decode, engine, checkpoints); events/second/core from
 *         the process's CPU time.
 * e2e     Time to block at the sidecar: a real sidecar publishing to Kafka and following the
 *         block list, the real `palisade detector` process, seeded benign clients, and floods of
 *         300 requests/s one after another; time from each flood's start to its first 403 BLOCKED
 *         (p50/p95) and the benign clients blocked.
 *
 * Needs the broker (bash deploy/kafka/broker.sh start) for kafka and e2e.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import kafkajs from 'kafkajs';
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { encodeAlert } from '../detectors/alerts/ocsf.ts';
import { parseDetectorConfig } from '../detectors/config.ts';
import { Detector, type Alert } from '../detectors/detector.ts';
import { startKafkaDetector } from '../detectors/kafka/service.ts';
import { recordOf } from '../detectors/sim/records.ts';
import { Rng } from '../detectors/sim/random.ts';
import { ATTACKS, generateTraffic, type AttackKind, type AttackSpec, type SimClient } from '../detectors/sim/traffic.ts';
import { loadSettings } from '../src/config/settings.ts';
import { decodeDecision, encodeDecision } from '../src/decision/encode.ts';
import type { DecisionRecord } from '../src/decision/record.ts';
import { createKafkaSink } from '../src/decision/sinks/kafka/index.ts';
import { partitionKey } from '../src/decision/sinks/kafka/key.ts';
import { createKafkaClient } from '../src/kafka/client.ts';
import { createLogger } from '../src/log/logger.ts';
import { createDetectorMetrics } from '../detectors/metrics.ts';
import { startHarness } from '../test/support/harness.ts';
import { closeClients, liveClients, replay, useSimApi, type Sent } from '../test/detector/support/live.ts';

const { values: args } = parseArgs({
  options: {
    only: { type: 'string' },
    seed: { type: 'string', default: '7' },
    clients: { type: 'string', default: '400' },
    minutes: { type: 'string', default: '30' },
    attacks: { type: 'string', default: '60' },
    events: { type: 'string', default: '200000' },
    floods: { type: 'string', default: '20' },
    guard: { type: 'string', default: 'on' },
  },
});
// kafkajs is CommonJS: named exports come from the default export.
const { CompressionTypes, Partitioners } = kafkajs;
const BROKERS = process.env['PALISADE_KAFKA_BROKERS'] ?? '127.0.0.1:19092';
const runs = (name: string) => !args.only || args.only === name;

function pct(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '-');
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '-');
const int = (n: number) => Math.round(n).toLocaleString('en-US');

/** Attacks spread over the run; flood/stuffing/enumeration half from new clients, half from known ones turning bad. */
function plannedAttacks(seed: number, n: number, minutes: number): AttackSpec[] {
  const rng = new Rng(seed * 31 + 1);
  const out: AttackSpec[] = [];
  for (let i = 0; i < n; i++) {
    const kind = ATTACKS[i % ATTACKS.length] as AttackKind;
    const known = kind === 'scraping' || kind === 'probing' || kind === 'slow-stuffing' ? i % 2 === 0 || kind !== 'slow-stuffing' : i % 2 === 0;
    const start = rng.uniform(5 * 60_000, Math.max(6 * 60_000, (minutes - 16) * 60_000));
    out.push({ kind, start, durationMs: kind === 'slow-stuffing' ? 15 * 60_000 : rng.uniform(30_000, 120_000), ...(known ? { warmAs: 'steady' as const } : {}) });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
async function engineBench(): Promise<void> {
  const seed = Number(args.seed);
  const minutes = Number(args.minutes);
  const benign = Number(args.clients);
  const attacks = plannedAttacks(seed, Number(args.attacks), minutes);
  const t0 = performance.now();
  const traffic = generateTraffic({ seed, durationMs: minutes * 60_000, benign, attacks });
  const base = Date.parse('2026-01-01T00:00:00Z');
  // New attackers have no identity (keyed by IP, like an unauthenticated client); the rest by SPIFFE ID.
  const anonymous = (c: SimClient) => c.attack !== null && !attacks[c.index - benign]?.warmAs;
  const keyOf = (c: SimClient) => (anonymous(c) ? c.ip : c.spiffeId);
  console.log(`engine: ${int(traffic.requests.length)} events from ${benign} benign clients (${minutes} min simulated) and ${attacks.length} attacks, seed ${seed} (generated in ${f1((performance.now() - t0) / 1000)} s)`);

  // Per chunk: the wire round trip (OCSF event -> JSON -> JSON.parse -> recordFromOcsf), then the engine with
  // the feedback policy as the service runs it, each timed on its own (wall and this process's CPU time).
  let now = base;
  const alerts: Alert[] = [];
  const blocks: { key: string; time: number; detection: string }[] = [];
  const detector = new Detector({
    config: parseDetectorConfig({ guard: { enabled: args.guard !== 'off' } }),
    now: () => now,
    outputs: { alert: (a) => alerts.push(a), block: (r, a) => blocks.push({ key: r.value, time: a.anomaly.time, detection: a.anomaly.detection }) },
  });
  const cpuOf = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1e6;
  let decodeWall = 0;
  let decodeCpu = 0;
  let engineWall = 0;
  let engineCpu = 0;
  let encodedBytes = 0;
  const CHUNK = 20_000;
  const total = traffic.requests.length;
  for (let i = 0; i < total; i += CHUNK) {
    const texts: string[] = [];
    for (let j = i; j < Math.min(total, i + CHUNK); j++) {
      const q = traffic.requests[j]!;
      const c = traffic.clients[q.client]!;
      texts.push(JSON.stringify(encodeDecision(recordOf(q, c, base, anonymous(c)))));
      encodedBytes += texts[texts.length - 1]!.length;
    }
    let c0 = process.cpuUsage();
    let w0 = performance.now();
    const records: DecisionRecord[] = texts.map((t) => decodeDecision(JSON.parse(t)));
    decodeWall += performance.now() - w0;
    decodeCpu += cpuOf(process.cpuUsage(c0));
    c0 = process.cpuUsage();
    w0 = performance.now();
    for (const r of records) {
      now = r.time;
      detector.observe(r);
    }
    engineWall += performance.now() - w0;
    engineCpu += cpuOf(process.cpuUsage(c0));
  }
  const st = detector.engine.stats();
  console.log(`  decode (JSON.parse + recordFromOcsf): ${int(total / (decodeWall / 1000))} events/s wall, ${int(total / decodeCpu)} per CPU-second (events ${int(encodedBytes / total)} bytes on average)`);
  console.log(`  engine (rules + feedback on decoded records, guard ${args.guard === 'off' ? 'off' : 'on'}): ${int(total / (engineWall / 1000))} events/s wall, ${int(total / engineCpu)} events/s per CPU-second = per core; ${st.clients} clients, ${st.routes} routes, ${st.anomalies} anomalies; heap ${int(process.memoryUsage().heapUsed / 2 ** 20)} MiB`);

  // Quality: over clients.
  const byKey = new Map(traffic.clients.map((c) => [keyOf(c), c]));
  const first = new Map<string, { time: number; detection: string }>();
  for (const b of blocks) if (!first.has(b.key)) first.set(b.key, b);
  let tp = 0;
  let fp = 0;
  const ttb = new Map<AttackKind, number[]>();
  const fpNames: string[] = [];
  for (const [k, b] of first) {
    const c = byKey.get(k);
    if (c?.attack && b.time >= base + c.attackStart) {
      tp++;
      const list = ttb.get(c.attack) ?? [];
      list.push((b.time - base - c.attackStart) / 1000);
      ttb.set(c.attack, list);
    } else {
      fp++;
      fpNames.push(`${c?.name ?? k} (${b.detection})`);
    }
  }
  const attackers = traffic.clients.filter((c) => c.attack !== null);
  const missed = attackers.filter((c) => !first.has(keyOf(c))).map((c) => c.name);
  const benignAlerts = alerts.filter((a) => !byKey.get(a.anomaly.client.key)?.attack);
  console.log(`  precision ${f2(tp / Math.max(1, tp + fp))}, recall ${f2(tp / attackers.length)} (${tp} of ${attackers.length} attackers blocked); benign clients blocked: ${fp}${fpNames.length ? ` (${fpNames.join(', ')})` : ''}; alerts on benign clients (medium+): ${benignAlerts.length}${missed.length ? `; missed: ${missed.join(', ')}` : ''}`);
  console.log('  time to block (event time from the attack\'s first request), seconds:');
  console.log('    attack          n    p50     p95     max');
  for (const kind of ATTACKS) {
    const v = ttb.get(kind) ?? [];
    console.log(`    ${kind.padEnd(14)} ${String(v.length).padStart(2)} ${f2(pct(v, 50)).padStart(7)} ${f2(pct(v, 95)).padStart(7)} ${f2(Math.max(...v)).padStart(7)}`);
  }
}

// ---------------------------------------------------------------------------------------------
/** Every request denied from `from` (ms into the run), as a sidecar under a broken policy or issuer would answer. */
function mistakeBench(kind: 'policy' | 'issuer'): void {
  const seed = Number(args.seed);
  const minutes = 20;
  const benign = Number(args.clients);
  const floods: AttackSpec[] = Array.from({ length: 5 }, (_, i) => ({ kind: 'flood' as const, start: (11 + i) * 60_000, durationMs: 30_000, warmAs: 'steady' as const }));
  const traffic = generateTraffic({ seed, durationMs: minutes * 60_000, benign, attacks: floods });
  const base = Date.parse('2026-01-01T00:00:00Z');
  const from = 10 * 60_000;
  let now = base;
  const alerts: Alert[] = [];
  const blocked = new Set<string>();
  const why = new Map<string, number>();
  const detector = new Detector({
    config: parseDetectorConfig({ guard: { enabled: args.guard !== 'off' } }),
    now: () => now,
    outputs: {
      alert: (a) => alerts.push(a),
      block: (r) => {
        if (!blocked.has(r.value)) why.set(r.detection ?? '?', (why.get(r.detection ?? '?') ?? 0) + 1);
        blocked.add(r.value);
      },
    },
  });
  for (const q of traffic.requests) {
    const c = traffic.clients[q.client]!;
    let r = recordOf(q, c, base, false);
    if (q.t >= from) {
      r =
        kind === 'policy'
          ? { ...r, verdict: 'deny', code: 'AUTHZ_NO_MATCHING_RULE', decidedBy: 'authz', response: { status: 403, bytesOut: 90 }, upstreamMs: null, policy: { name: 'sim', version: '2', hash: 'b4d-policy' } }
          : { ...r, verdict: 'deny', code: 'AUTHN_TOKEN_EXPIRED', decidedBy: 'authn', response: { status: 401, bytesOut: 90 }, upstreamMs: null };
    }
    now = r.time;
    detector.observe(r);
  }
  const benignBlocked = traffic.clients.filter((c) => c.attack === null && blocked.has(c.spiffeId)).length;
  const floodsBlocked = traffic.clients.filter((c) => c.attack !== null && blocked.has(c.spiffeId)).length;
  const guard = alerts.filter((a) => a.anomaly.detection === 'guard.blast-radius');
  const suppressed = alerts.filter((a) => a.suppressed === 'guard').length;
  console.log(
    `mistake (${kind === 'policy' ? 'a policy denying every client: 403 under a new hash' : 'the issuer\'s tokens all refused as expired: 401'}), ${benign} benign clients, guard ${args.guard === 'off' ? 'off' : 'on'}: ` +
      `benign clients blocked: ${benignBlocked} of ${benign}; guard alerts: ${guard.length}; blocks suppressed by the guard: ${suppressed}; floods blocked: ${floodsBlocked} of ${floods.length} (first blocks by detection: ${[...why].map(([d, n]) => `${d} ${n}`).join(', ')})`,
  );
  if (guard[0]) console.log(`  ${guard[0].anomaly.summary}`);
}

// ---------------------------------------------------------------------------------------------
function worldEnv(tag: string): Record<string, string> {
  const prefix = `palisade-bench-det-${tag}-${randomUUID().slice(0, 8)}`;
  return {
    PALISADE_KAFKA_BROKERS: BROKERS,
    PALISADE_KAFKA_TOPIC_DECISIONS: `${prefix}.decisions`,
    PALISADE_KAFKA_TOPIC_BLOCKLIST: `${prefix}.blocklist`,
    PALISADE_KAFKA_TOPIC_ALERTS: `${prefix}.alerts`,
    PALISADE_KAFKA_TOPIC_PARTITIONS: '3',
    PALISADE_KAFKA_TOPIC_REPLICATION: '1',
    PALISADE_LOG_LEVEL: 'silent',
  };
}

async function dropTopics(env: Record<string, string>): Promise<void> {
  const prefix = (env['PALISADE_KAFKA_TOPIC_DECISIONS'] as string).replace(/\.decisions$/, '');
  const kafka = createKafkaClient(loadSettings(env), createLogger({ level: 'silent' }));
  const admin = kafka.admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    if (topics.length) await admin.deleteTopics({ topics }).catch(() => undefined);
  } finally {
    await admin.disconnect();
  }
}

async function kafkaBench(): Promise<void> {
  const n = Number(args.events);
  const env = worldEnv('kafka');
  const settings = loadSettings(env);
  const logger = createLogger({ level: 'silent' });
  const kafka = createKafkaClient(settings, logger);
  const groupId = `${env['PALISADE_KAFKA_TOPIC_DECISIONS']}.detector`;
  const config = parseDetectorConfig({ kafka: { groupId, stateTopic: `${env['PALISADE_KAFKA_TOPIC_DECISIONS']}.state` } });
  // Start once to create the topics and the group (at the end of the empty topic), then stop.
  const first = await startKafkaDetector({ settings, config, logger, encodeAlert });
  await first.started;
  await first.close();
  console.log('  (topics and group ready; producing)');

  // Produce n events of 300 clients' traffic, keyed like the sidecar's sink.
  const traffic = generateTraffic({ seed: Number(args.seed), durationMs: 10 * 60_000, benign: 300 });
  const producer = kafka.producer({ allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const base = Date.now() - 10 * 60_000;
  let sent = 0;
  for (let i = 0; sent < n; i = (i + 1) % traffic.requests.length) {
    const batch = [];
    for (let j = 0; j < 200 && sent < n; j++, sent++) {
      const q = traffic.requests[(i * 200 + j) % traffic.requests.length]!;
      const r = recordOf(q, traffic.clients[q.client]!, base, false);
      batch.push({ key: partitionKey(r), value: JSON.stringify(encodeDecision(r)) });
    }
    await producer.send({ topic: settings.kafkaTopicDecisions, messages: batch, acks: 1, compression: CompressionTypes.GZIP });
  }
  await producer.disconnect();
  console.log(`  (${int(n)} events produced; consuming)`);

  // The group sits at the end of the (then empty) topic: rewind it to the start, then time the consumption.
  const admin = kafka.admin();
  await admin.connect();
  const lows = await admin.fetchTopicOffsets(settings.kafkaTopicDecisions);
  await admin.setOffsets({ groupId, topic: settings.kafkaTopicDecisions, partitions: lows.map((p) => ({ partition: p.partition, offset: p.low })) });
  await admin.disconnect();
  const metrics = createDetectorMetrics(new Registry(), { processMetrics: false });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const d = await startKafkaDetector({ settings, config, logger, encodeAlert, metrics });
  await d.started;
  let lastLog = Date.now();
  // Steady state: from the first consumed event (after the group join and the restore) to the last.
  let steady: { t: number; cpu: NodeJS.CpuUsage; consumed: number } | null = null;
  while (d.stats().consumed < n) {
    await new Promise((r) => setTimeout(r, 5));
    if (steady === null && d.stats().consumed > 0) steady = { t: performance.now(), cpu: process.cpuUsage(), consumed: d.stats().consumed };
    if (process.env['BENCH_DEBUG'] && Date.now() - lastLog > 2000) {
      lastLog = Date.now();
      console.log('  ', JSON.stringify(d.stats()), d.ready());
    }
  }
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const cpuS = (cpu.user + cpu.system) / 1e6;
  const st0 = steady ?? { t: t0, cpu: cpu0, consumed: 0 };
  const steadyWall = (performance.now() - st0.t) / 1000;
  const steadyCpuU = process.cpuUsage(st0.cpu);
  const steadyCpu = (steadyCpuU.user + steadyCpuU.system) / 1e6;
  const steadyN = n - st0.consumed;
  const s = d.stats();
  await d.close();
  await dropTopics(env);
  console.log(`kafka: ${int(n)} OCSF events consumed by the detector service in ${f1(wall)} s from its start (group join and restore included): ${int(n / wall)} events/s wall, ${int(n / cpuS)} per CPU-second`);
  console.log(`  steady state (first to last event): ${int(steadyN / steadyWall)} events/s wall, ${int(steadyN / steadyCpu)} events/s per CPU-second of this process (kafkajs fetch and gunzip, JSON.parse, recordFromOcsf, engine, checkpoints); ${s.checkpoints} checkpoints, ${detectorClients(d)} clients`);
}

function detectorClients(d: { detector: Detector }): number {
  return d.detector.engine.clients.size;
}

// ---------------------------------------------------------------------------------------------
async function e2eBench(): Promise<void> {
  const env = worldEnv('e2e');
  const settings = loadSettings(env);
  const logger = createLogger({ level: 'silent' });
  const groupId = `${env['PALISADE_KAFKA_TOPIC_DECISIONS']}.detector`;
  // The detector: the real `palisade detector` process, default thresholds, shorter warm-up and epochs so a
  // few minutes of benchmark have warm baselines.
  const cfgFile = `/tmp/palisade-bench-detector-${process.pid}.json`;
  const { writeFileSync, rmSync } = await import('node:fs');
  writeFileSync(cfgFile, JSON.stringify({ engine: { warmupEvents: 10, warmupSeconds: 5 }, population: { epochSeconds: 5, minSamples: 20 }, kafka: { groupId, stateTopic: `${env['PALISADE_KAFKA_TOPIC_DECISIONS']}.state` } }));
  const child: ChildProcess = spawn(process.execPath, ['src/cli/main.ts', 'detector'], {
    env: { ...process.env, ...env, PALISADE_DETECTOR_CONFIG: cfgFile, PALISADE_DETECTOR_ADMIN_PORT: '0', PALISADE_DETECTOR_ADMIN_HOST: '127.0.0.1', PALISADE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  // Topics exist once the detector is up; wait for its group to have a member.
  const kafka = createKafkaClient(settings, logger);
  const admin = kafka.admin();
  await admin.connect();
  for (let i = 0; i < 300; i++) {
    const g = await admin.describeGroups([groupId]).catch(() => null);
    if (g?.groups[0]?.state === 'Stable') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await admin.disconnect();

  const sink = await createKafkaSink(settings, logger);
  const h = await startHarness(
    `apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: bench-detector, version: "1" }
spec:
  authorization:
    rules:
      - { id: api, paths: [/**], public: true }
`,
    { env, sink },
  );
  useSimApi(h.upstream);

  const floods = Number(args.floods);
  const warmMs = 30_000;
  const gapMs = 4000;
  const floodMs = 3000;
  const duration = warmMs + floods * gapMs + floodMs;
  const traffic = generateTraffic({
    seed: Number(args.seed),
    durationMs: duration,
    benign: 24,
    firstIndex: 1000,
    attacks: Array.from({ length: floods }, (_, i) => ({ kind: 'flood' as const, start: warmMs + i * gapMs, durationMs: floodMs, rate: 300, ...(i % 2 === 0 ? { warmAs: 'steady' as const } : {}) })),
  });
  const clients = await liveClients([h.pki], traffic.clients);
  const start = Date.now();
  const firstBlock = new Map<number, Sent>();
  const results = await replay(clients, traffic.requests, {
    bases: [h.base],
    startAt: start,
    onResult: (s) => {
      if (s.code === 'BLOCKED' && !firstBlock.has(s.req.client)) firstBlock.set(s.req.client, s);
    },
    stopClient: (c, s) => s.code === 'BLOCKED' && traffic.clients.some((x) => x.index === c && x.attack !== null),
  });
  const times: number[] = [];
  let missed = 0;
  for (const c of traffic.clients.filter((x) => x.attack)) {
    const fb = firstBlock.get(c.index);
    if (fb) times.push((fb.doneAt - (start + c.attackStart)) / 1000);
    else missed++;
  }
  const benignBlocked = new Set(results.filter((r) => r.code === 'BLOCKED' && !traffic.clients.find((c) => c.index === r.req.client)?.attack).map((r) => r.req.client)).size;
  const sentFlood = results.filter((r) => r.req.attack).length;
  console.log(
    `e2e: ${floods} floods of 300 requests/s (half from known clients, half new) among 24 benign clients, 1 sidecar -> Kafka -> palisade detector -> Kafka -> sidecar: ` +
      `time from the flood's start to its first 403 BLOCKED p50 ${f2(pct(times, 50))} s, p95 ${f2(pct(times, 95))} s, max ${f2(Math.max(...times))} s; not blocked ${missed}; benign clients blocked ${benignBlocked}; ${int(results.length)} requests answered (${int(sentFlood)} flood)`,
  );
  await closeClients(clients);
  await h.close();
  child.kill('SIGTERM');
  await new Promise((r) => {
    child.once('exit', r);
    setTimeout(() => child.kill('SIGKILL'), 15_000).unref();
  });
  rmSync(cfgFile, { force: true });
  await dropTopics(env);
}

if (runs('engine')) await engineBench();
if (runs('mistake')) {
  mistakeBench('policy');
  mistakeBench('issuer');
}
if (runs('kafka')) await kafkaBench();
if (runs('e2e')) await e2eBench();
