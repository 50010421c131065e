/**
 * Cost of the sidecar's per-request metric updates (src/sidecar/record-metrics.ts recordDecision and
 * the in-flight gauge), before and after the hot-path series (src/telemetry/hot-metrics.ts).
 * "before" is plain prom-client with cached label children, as metrics.ts did it
 * (test/telemetry/helpers/legacy-request-metrics.ts). In process, no I/O; CPU time per call
 * (process.cpuUsage, so other load on the machine does not count), interleaved rounds.
 * Also the cost of scraping those metrics, which now also moves the raw numbers in.
 *
 *   node bench/metrics.ts [calls per round] [rounds]
 */
import { loadavg } from 'node:os';
import { Registry } from 'prom-client';
import type { DecisionRecord } from '../src/decision/record.ts';
import { createSidecarMetrics } from '../src/sidecar/metrics.ts';
import { createLegacyRequestMetrics } from '../test/telemetry/helpers/legacy-request-metrics.ts';
import { decisionRecord } from '../test/telemetry/helpers/record.ts';
import { variedRecords } from '../test/telemetry/helpers/varied-records.ts';

const N = Number(process.argv[2] ?? 200_000);
const ROUNDS = Number(process.argv[3] ?? 9);

/** The common request: allowed through all six stages, forwarded. */
const typical: DecisionRecord[] = Array.from({ length: 256 }, (_, i) =>
  decisionRecord({
    durationMs: 0.4 + (i % 17) * 0.3,
    upstreamMs: 0.2 + (i % 17) * 0.28,
    route: ['/orders/{id}', '/orders', '/users/{id}/profile'][i % 3] as string,
    stages: (['blocklist', 'authn', 'ratelimit', 'authz', 'validation', 'forward'] as const).map((stage, j) => ({ stage, us: 3 + ((i * 7 + j * 13) % 60), outcome: 'continue' as const })),
  }),
);
/** Every branch: denies at each stage, rate limits, blocks, would-deny, upstream errors, no route. */
const varied = variedRecords(256);

const legacy = createLegacyRequestMetrics(new Registry());
const legacyRegistry = new Registry();
const legacyForScrape = createLegacyRequestMetrics(legacyRegistry);
const hotRegistry = new Registry();
const hot = createSidecarMetrics(hotRegistry, { processMetrics: false });
const hotForRecords = createSidecarMetrics(new Registry(), { processMetrics: false });

type Case = { label: string; run: (i: number) => void };
const cases: Case[] = [
  { label: 'before: recordDecision, typical allow', run: (i) => legacy.recordDecision(typical[i & 255] as DecisionRecord) },
  { label: 'after:  recordDecision, typical allow', run: (i) => hotForRecords.recordDecision(typical[i & 255] as DecisionRecord) },
  { label: 'before: recordDecision, varied mix', run: (i) => legacy.recordDecision(varied[i & 255] as DecisionRecord) },
  { label: 'after:  recordDecision, varied mix', run: (i) => hotForRecords.recordDecision(varied[i & 255] as DecisionRecord) },
  { label: 'before: in-flight start + end', run: () => (legacy.onRequestStart(), legacy.onRequestEnd()) },
  { label: 'after:  in-flight start + end', run: () => (hotForRecords.observer.onRequestStart?.(), hotForRecords.observer.onRequestEnd?.()) },
];

const results = new Map<string, number[]>(cases.map((c) => [c.label, []]));
// Warm up (JIT) before any timing.
for (const c of cases) for (let i = 0; i < N; i++) c.run(i);
for (let round = 0; round < ROUNDS; round++) {
  for (const c of cases) {
    const t0 = process.cpuUsage();
    for (let i = 0; i < N; i++) c.run(i);
    const d = process.cpuUsage(t0);
    results.get(c.label)?.push(((d.user + d.system) * 1000) / N);
  }
}

// A scrape: the same series in both registries; the hot one also has a scrape's worth of
// pending records to move in (what a 15 s scrape interval at ~1000 req/s leaves).
for (const r of varied) legacyForScrape.recordDecision(r);
for (const r of varied) hot.recordDecision(r);
const scrape: Record<'before' | 'after', number[]> = { before: [], after: [] };
for (let round = 0; round < ROUNDS; round++) {
  for (let i = 0; i < 15_000; i++) hot.recordDecision(varied[i & 255] as DecisionRecord);
  let t0 = process.cpuUsage();
  for (const name of legacyForScrape.names) await hotRegistry.getSingleMetricAsString(name);
  let d = process.cpuUsage(t0);
  scrape.after.push(d.user + d.system);
  for (let i = 0; i < 15_000; i++) legacyForScrape.recordDecision(varied[i & 255] as DecisionRecord);
  t0 = process.cpuUsage();
  for (const name of legacyForScrape.names) await legacyRegistry.getSingleMetricAsString(name);
  d = process.cpuUsage(t0);
  scrape.before.push(d.user + d.system);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
// The fastest round is the cost without interference (cache, frequency); the median shows the spread.
console.log(`Per-request metric updates, CPU time per call (Node ${process.version}; ${ROUNDS} interleaved rounds of ${N}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
for (const [label, xs] of results) console.log(`  ${label.padEnd(42)} ${Math.min(...xs).toFixed(0).padStart(6)} ns/call min, ${median(xs).toFixed(0).padStart(6)} median`);
console.log('Scrape of the request-path metrics (their text exposition), CPU time:');
for (const [label, xs] of Object.entries(scrape)) console.log(`  ${label.padEnd(42)} ${Math.min(...xs).toFixed(0).padStart(6)} us min, ${median(xs).toFixed(0).padStart(6)} median`);
