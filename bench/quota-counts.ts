/**
 * The quota aggregator's own cost, in process (no broker): what one detector instance spends per
 * decision event it counts, and what a checkpoint of many keys costs to build and to read back.
 *
 *   - count: per decision event carrying a quota charge, the work the aggregator does on it
 *     (JSON.parse of the standard OCSF event, recordFromOcsf, QuotaCounts.add), CPU µs;
 *   - checkpoint: KEYS keys changed on the owned partitions, the records to write built and
 *     encoded (what goes to the counts topic), CPU ms and bytes;
 *   - follow: the same records decoded and applied by another instance (onPublished), CPU ms.
 *
 * CPU time (process.cpuUsage), median of ROUNDS.
 *
 *   node bench/quota-counts.ts [keys] [rounds]
 */
import { randomUUID } from 'node:crypto';
import { decodeQuotaCount, quotaCountKey, QUOTA_COUNT_VERSION } from '../detectors/quota/count-record.ts';
import { QuotaCounts } from '../detectors/quota/counts.ts';
import { encodeDecisionJson } from '../src/decision/encode.ts';
import { recordFromOcsf } from '../src/decision/ocsf/read.ts';
import type { DecisionRecord } from '../src/decision/record.ts';

const KEYS = Number(process.argv[2] ?? 100_000);
const ROUNDS = Number(process.argv[3] ?? 5);
const EVENTS = 100_000;
const DAY = 86_400_000;
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1] as number;
const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

const now = Date.now();
function decision(i: number): DecisionRecord {
  const id = `spiffe://bench.local/ns/a/sa/client-${i % 1000}`;
  return {
    id: randomUUID(),
    requestId: '3f2a9c1d0b7e4a56',
    traceId: null,
    time: now,
    durationMs: 1.2,
    verdict: 'allow',
    decidedBy: 'forward',
    code: 'ALLOWED',
    rule: 'orders',
    wouldDeny: [],
    identity: { subject: id, methods: ['mtls'], spiffeId: id, issuer: null, clientId: null, scopes: [], groups: [], claims: {}, tokenId: null, expiresAt: null },
    client: { ip: '10.0.0.1', port: 40000, forwardedFor: [] },
    server: { ip: '10.0.1.1', port: 8443 },
    tls: null,
    request: { method: 'GET', path: '/api/orders', host: 'orders', scheme: 'https', httpVersion: '1.1', userAgent: null, contentType: null, route: '/api/**', params: null, bytesIn: 0 },
    response: { status: 200, bytesOut: 120 },
    stages: [],
    upstreamMs: 0.8,
    policy: { name: 'orders', version: '1', hash: 'h' },
    detail: null,
    quotas: [{ rule: 'per-tenant', key: `tenant-${i % KEYS}`, limit: 1_000_000_000, windowMs: DAY }],
  };
}

// The events as the aggregator receives them (standard detail, as the sidecars publish them).
const events = Array.from({ length: EVENTS }, (_, i) => Buffer.from(encodeDecisionJson(decision(i), 'standard')));
const count: number[] = [];
const build: number[] = [];
const follow: number[] = [];
let bytes = 0;
for (let r = 0; r < ROUNDS; r++) {
  const owned = new Set([0, 1, 2]);
  const counts = new QuotaCounts({ fairShare: true }, owned);
  // Every key once (so that KEYS keys are dirty), then the timed events.
  for (let i = 0; i < KEYS; i++) counts.add(decision(i), now, i % 3, BigInt(i));
  let t = cpuUs();
  for (let i = 0; i < EVENTS; i++) {
    const msg = events[i] as Buffer;
    if (!msg.includes('"quotas"')) continue;
    counts.add(recordFromOcsf(JSON.parse(msg.toString('utf8'))), now, i % 3, BigInt(KEYS + i));
  }
  count.push((cpuUs() - t) / EVENTS);

  t = cpuUs();
  const cp = counts.checkpoint((p) => BigInt(KEYS + EVENTS + p));
  const messages = cp.records.map((x) => ({ key: quotaCountKey(x.id), value: x.record ? JSON.stringify({ v: QUOTA_COUNT_VERSION, ...x.record }) : null }));
  build.push((cpuUs() - t) / 1000);
  bytes = messages.reduce((n, m) => n + m.key.length + (m.value?.length ?? 0), 0);

  const other = new QuotaCounts({ fairShare: true }, new Set([3]));
  const wire = messages.map((m) => ({ key: Buffer.from(m.key), value: m.value === null ? null : Buffer.from(m.value) }));
  t = cpuUs();
  for (const m of wire) {
    const d = decodeQuotaCount(m);
    if (d.type !== 'invalid') other.onPublished(d.id, d.type === 'count' ? d.record : null, now, now);
  }
  follow.push((cpuUs() - t) / 1000);
  if (cp.records.length !== KEYS) throw new Error(`expected ${KEYS} records, got ${cp.records.length}`);
}
console.log(`quota aggregator, ${KEYS} keys over 3 owned partitions, median of ${ROUNDS} rounds:`);
console.log(`  count one decision event (parse + count): ${median(count).toFixed(2)} µs CPU`);
console.log(`  checkpoint of ${KEYS} changed keys: ${median(build).toFixed(0)} ms CPU to build and encode, ${(bytes / 1e6).toFixed(1)} MB (${Math.round(bytes / KEYS)} bytes per key)`);
console.log(`  another instance applying them: ${median(follow).toFixed(0)} ms CPU`);
