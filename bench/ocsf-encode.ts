/**
 * Cost of turning one decision record into its OCSF HTTP Activity event (the
 * work every sink's background drain does per request), and of the steps
 * around it: JSON serialization, reading an event back, and the other
 * projections. In process, no I/O; CPU time per event (process.cpuUsage, so
 * other load on the machine does not count), interleaved rounds.
 *
 *   node bench/ocsf-encode.ts [events per round] [rounds]
 *
 * Also the two detail levels (PALISADE_EVENT_DETAIL) on the benchmark's
 * full-policy request: CPU per event (the standard level three ways, side by
 * side: the event object through JSON.stringify, through the shared-part
 * writer the full level uses, and the text written straight from the record,
 * which is what the sinks run), mean size for the allowed request and for
 * denied ones (rate limit, no matching rule, body schema, expired token,
 * block list), and compressed bytes per event in batches of 100 (what the
 * Kafka sink sends with gzip or zstd; event and request ids as random as in
 * a real stream).
 *
 * Last, the decision thread's CPU per event: the real worker sink
 * (PALISADE_DECISIONS_THREAD=worker, the default) writing NDJSON to a temp
 * file at each detail level, its thread's CPU time (Worker.cpuUsage: it
 * reads the hand-over lines, maps, serializes and writes) and the request
 * thread's share (batching and the hand-over) over 50,000 records.
 *
 * "keep-alive" reuses the connection's TLS facts and the identity object, as
 * the sidecar does for every request on one connection (tls/peer.ts and
 * authn cache them), so their OCSF form is reused; "new connection" gives
 * every record fresh ones, the worst case.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import { toOcsfAuthentication } from '../src/decision/ocsf/authentication.ts';
import { toOcsfDetectionFinding, type AnomalyInput } from '../src/decision/ocsf/detection-finding.ts';
import { toEcs } from '../src/decision/ocsf/ecs.ts';
import { decisionEncoder, encodeDecisionJson } from '../src/decision/encode.ts';
import { eventJson } from '../src/decision/ocsf/json.ts';
import { standardEventJson, toOcsfHttpActivityStandard } from '../src/decision/ocsf/standard.ts';
import { toOcsfHttpActivity } from '../src/decision/ocsf/http-activity.ts';
import { recordFromOcsf } from '../src/decision/ocsf/read.ts';
import type { DecisionRecord } from '../src/decision/record.ts';
import { createWorkerSink } from '../src/decision/sinks/worker/sink.ts';
import { createLogger } from '../src/log/logger.ts';
import { requestId, uuidv7 } from '../src/util/ids.ts';
import { benchAllowRecord, blockedServiceRecord, jwtAllowRecord } from '../test/decision/ocsf/records.ts';

const N = Number(process.argv[2] ?? 20_000);
const ROUNDS = Number(process.argv[3] ?? 9);

const allow = jwtAllowRecord();
const deny = blockedServiceRecord();
/** Same connection: shared TlsFacts and Identity objects, different requests. */
const keepAlive: DecisionRecord[] = Array.from({ length: 64 }, (_, i) => ({ ...(i % 4 === 3 ? deny : allow), id: `${allow.id.slice(0, -4)}${String(i).padStart(4, '0')}`, requestId: `req-${i}` }));
/** A new connection per record: fresh TlsFacts and Identity objects (nothing to reuse). */
function fresh(r: DecisionRecord): DecisionRecord {
  return structuredClone(r);
}
const lines = keepAlive.map((r) => JSON.stringify(toOcsfHttpActivity(r)));
const anomaly: AnomalyInput = {
  detection: 'rate.burst', severity: 'high', score: 6.2, metric: 'requests per second', unit: 'req/s', observed: 310, threshold: 50,
  thresholdRule: 'max(floor 30, 4 × mean 2.1, mean + 6σ 14.2)', baseline: { source: 'client', mean: 2.1, stddev: 2.01, samples: 3600, unit: 'req/s' },
  window: { seconds: 10, start: allow.time - 10_000, end: allow.time }, route: null,
  client: { key: 'user-8842', kind: 'identity', ip: '10.1.4.23', subject: 'user-8842', spiffeId: null, tokenId: null }, evidenceId: allow.id, time: allow.time, summary: 'burst',
};

/** The benchmark's full-policy request (mTLS + RS256 JWT + 1 KB JSON POST), 64 of them over 8 tokens and 32 connections. */
const bench: DecisionRecord[] = Array.from({ length: 64 }, (_, i) => benchAllowRecord(i));
const standard = decisionEncoder('standard');
const full = decisionEncoder('full');
const standardLines = bench.map(standard);

/** The same client's denied requests, as the sidecar records them (no upstream; the deciding stage and rule). */
function denied(i: number): DecisionRecord[] {
  const a = benchAllowRecord(i);
  const deny = { ...a, verdict: 'deny' as const, upstreamMs: null, response: { status: 403, bytesOut: 310 } };
  const stagesUpTo = (n: number) => a.stages.slice(0, n);
  return [
    { ...deny, decidedBy: 'ratelimit', code: 'RATE_LIMITED', rule: 'per-client', response: { status: 429, bytesOut: 330 }, stages: stagesUpTo(3), detail: 'limit per-client: 100 per 1 s' },
    { ...deny, decidedBy: 'authz', code: 'AUTHZ_NO_MATCHING_RULE', rule: null, stages: stagesUpTo(4), detail: null },
    { ...deny, decidedBy: 'validation', code: 'SCHEMA_VIOLATION', rule: null, response: { status: 400, bytesOut: 420 }, detail: 'body /payment: must match exactly one schema in oneOf' },
    // Refused at authn: no identity; the peer certificate's SPIFFE ID then travels with the peer.
    { ...deny, decidedBy: 'authn', code: 'AUTHN_TOKEN_EXPIRED', rule: null, identity: null, response: { status: 401, bytesOut: 300 }, stages: stagesUpTo(2), detail: 'token expired 12 s ago' },
    { ...deny, decidedBy: 'blocklist', code: 'BLOCKED', rule: 'detector:burst:9f1c', identity: null, stages: stagesUpTo(1), detail: 'client is blocked until 2025-06-01T12:15:00Z' },
  ] as DecisionRecord[];
}
const deniedBench = Array.from({ length: 8 }, (_, i) => denied(i)).flat();
/** 1,000 allowed requests with the ids a real stream has (UUIDv7 event ids, random request ids, advancing time). */
const stream: DecisionRecord[] = Array.from({ length: 1000 }, (_, i) => {
  const r = benchAllowRecord(i);
  return { ...r, id: uuidv7(r.time + i * 3), requestId: requestId(), time: r.time + i * 3 };
});

let sink = 0;
type Case = { label: string; prepare?: () => DecisionRecord[]; run: (i: number, batch: DecisionRecord[] | null) => number };
const cases: Case[] = [
  { label: 'record -> OCSF event, keep-alive', run: (i) => toOcsfHttpActivity(keepAlive[i & 63] as DecisionRecord).time },
  { label: 'record -> OCSF event, new connection', prepare: () => Array.from({ length: N }, (_, i) => fresh(keepAlive[i & 63] as DecisionRecord)), run: (i, b) => toOcsfHttpActivity((b as DecisionRecord[])[i] as DecisionRecord).time },
  { label: 'record -> event JSON (what a sink does)', run: (i) => encodeDecisionJson(keepAlive[i & 63] as DecisionRecord).length },
  { label: 'record -> event JSON, new connection', prepare: () => Array.from({ length: N }, (_, i) => fresh(keepAlive[i & 63] as DecisionRecord)), run: (i, b) => encodeDecisionJson((b as DecisionRecord[])[i] as DecisionRecord).length },
  { label: 'record -> JSON (the former identity encoding)', run: (i) => JSON.stringify(keepAlive[i & 63]).length },
  { label: 'benchmark request -> JSON, standard detail', run: (i) => standard(bench[i & 63] as DecisionRecord).length },
  { label: '  standard: event object -> JSON.stringify', run: (i) => JSON.stringify(toOcsfHttpActivityStandard(bench[i & 63] as DecisionRecord)).length },
  { label: '  standard: event object -> shared-part writer', run: (i) => eventJson(toOcsfHttpActivityStandard(bench[i & 63] as DecisionRecord)).length },
  { label: '  standard: text straight from the record (sinks)', run: (i) => standardEventJson(bench[i & 63] as DecisionRecord).length },
  { label: 'benchmark request -> JSON, full detail', run: (i) => full(bench[i & 63] as DecisionRecord).length },
  { label: 'benchmark request, new connection, standard', prepare: () => Array.from({ length: N }, (_, i) => fresh(bench[i & 63] as DecisionRecord)), run: (i, b) => standard((b as DecisionRecord[])[i] as DecisionRecord).length },
  { label: 'denied requests -> JSON, standard detail', run: (i) => standard(deniedBench[i % deniedBench.length] as DecisionRecord).length },
  { label: 'denied requests -> JSON, full detail', run: (i) => full(deniedBench[i % deniedBench.length] as DecisionRecord).length },
  { label: 'standard JSON line -> record', run: (i) => recordFromOcsf(JSON.parse(standardLines[i & 63] as string)).time },
  { label: 'JSON line -> record (policy diff, detector)', run: (i) => recordFromOcsf(JSON.parse(lines[i & 63] as string)).time },
  { label: '  of which JSON.parse alone', run: (i) => (JSON.parse(lines[i & 63] as string) as { time: number }).time },
  { label: 'record -> Authentication event (3002)', run: (i) => toOcsfAuthentication(keepAlive[i & 63] as DecisionRecord)?.time ?? 0 },
  { label: 'record -> ECS document', run: (i) => (toEcs(keepAlive[i & 63] as DecisionRecord)['@timestamp'] as string).length },
  { label: 'anomaly -> Detection Finding (2004)', run: () => toOcsfDetectionFinding(anomaly).time },
];

const results = new Map<string, number[]>(cases.map((c) => [c.label, []]));
for (const c of cases) {
  // Warm up (JIT) before any timing.
  const batch = c.prepare ? c.prepare() : null;
  for (let i = 0; i < N; i++) sink += c.run(i, batch) & 1;
}
for (let round = 0; round < ROUNDS; round++) {
  for (const c of cases) {
    const batch = c.prepare ? c.prepare() : null;
    // CPU time of the process (all its threads, GC included), not wall time:
    // on a shared machine waiting for a core is not a cost of the encoder.
    const t0 = process.cpuUsage();
    for (let i = 0; i < N; i++) sink += c.run(i, batch) & 1;
    const d = process.cpuUsage(t0);
    results.get(c.label)?.push(((d.user + d.system) * 1000) / N);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
// The fastest round is the cost without interference (cache, frequency); the median shows the spread.
const eventBytes = lines.reduce((n, l) => n + Buffer.byteLength(l), 0) / lines.length;
const recordBytes = keepAlive.reduce((n, r) => n + Buffer.byteLength(JSON.stringify(r)), 0) / keepAlive.length;
console.log(`OCSF encoding cost, CPU time per event (Node ${process.version}; ${ROUNDS} interleaved rounds of ${N}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
for (const [label, xs] of results) console.log(`  ${label.padEnd(50)} ${Math.min(...xs).toFixed(0).padStart(7)} ns/event min, ${median(xs).toFixed(0).padStart(7)} median   (${(1e9 / Math.min(...xs) / 1000).toFixed(0)}k/s on one core)`);
console.log(`  event size ${eventBytes.toFixed(0)} bytes of JSON (record alone: ${recordBytes.toFixed(0)} bytes)`);
const meanBytes = (f: (r: DecisionRecord) => string) => bench.reduce((n, r) => n + Buffer.byteLength(f(r)), 0) / bench.length;
console.log(`  benchmark request (allowed): standard ${meanBytes(standard).toFixed(0)} bytes mean, full ${meanBytes(full).toFixed(0)} bytes mean`);
const meanDenied = (f: (r: DecisionRecord) => string) => deniedBench.reduce((n, r) => n + Buffer.byteLength(f(r)), 0) / deniedBench.length;
console.log(`  the same client's denied requests (5 kinds): standard ${meanDenied(standard).toFixed(0)} bytes mean, full ${meanDenied(full).toFixed(0)} bytes mean`);
/** Batches of 100 events compressed as the Kafka sink's codecs do (src/kafka/codecs.ts): bytes per event. */
const compressedPerEvent = (f: (r: DecisionRecord) => string, compress: (b: Buffer) => Buffer) => {
  let bytes = 0;
  for (let b = 0; b < stream.length; b += 100) bytes += compress(Buffer.from(stream.slice(b, b + 100).map(f).join('\n'))).length;
  return bytes / stream.length;
};
const codecs: readonly [string, (b: Buffer) => Buffer][] = [
  ['gzip level 1 (the sink\'s)', (b) => gzipSync(b, { level: 1 })],
  ['gzip level 6', (b) => gzipSync(b, { level: 6 })],
  ['zstd level 3', (b) => zstdCompressSync(b)],
];
for (const [name, c] of codecs) console.log(`  ${name}, batches of 100 (allowed, real-like ids): standard ${compressedPerEvent(standard, c).toFixed(0)} bytes per event, full ${compressedPerEvent(full, c).toFixed(0)}`);

/** The worker sink's thread and the request thread, CPU per record, NDJSON to a temp file. */
async function threadCost(detail: 'standard' | 'full', records: number): Promise<{ thread: number; request: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'palisade-ocsf-bench-'));
  try {
    let worker: Worker | null = null;
    const s = await createWorkerSink({ spec: { kind: 'ndjson', target: join(dir, 'd.ndjson'), detail }, logger: createLogger({ level: 'warn' }), onThread: (w) => (worker = w) });
    const feed = async (n: number) => {
      for (let i = 0; i < n; i++) {
        s.write(bench[i & 63] as DecisionRecord);
        // Let batches go out as the sidecar's event loop would (and stay far below maxQueued).
        if ((i & 1023) === 1023) await new Promise((r) => setImmediate(r));
      }
      await s.flush();
    };
    await feed(10_000); // warm-up: JIT, the shared identity, TLS and policy definitions sent
    const w = worker as Worker | null;
    if (!w) throw new Error('no decision thread');
    const t0 = await w.cpuUsage();
    const m0 = process.threadCpuUsage();
    await feed(records);
    const m = process.threadCpuUsage(m0);
    const t = await w.cpuUsage(t0);
    await s.close();
    return { thread: (t.user + t.system) / records, request: (m.user + m.system) / records };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
for (const detail of ['standard', 'full'] as const) {
  const c = await threadCost(detail, 50_000);
  console.log(`  decision thread, NDJSON, ${detail.padEnd(8)}: ${c.thread.toFixed(1)} µs CPU per event on the thread, ${c.request.toFixed(1)} µs on the request thread (batching, hand-over; includes this loop)`);
}
if (sink === -1) console.log(sink); // keeps the results alive
