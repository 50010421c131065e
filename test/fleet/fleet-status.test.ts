/**
 * Fleet status on the real broker with three real sidecar processes: each publishes its status
 * record on the sidecars topic; a policy rolled to one of them shows as drift (palisade fleet
 * status exits 3) and clears when all have it; a refused policy shows with its code; a block
 * reaches all of them (their block-list position passes it); a sidecar stopped cleanly leaves
 * the count at once (tombstone), one killed goes stale.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishManualBlock } from '../../src/blocklist/kafka-ops.ts';
import { encodeBlock } from '../../src/blocklist/kafka-record.ts';
import { loadSettings } from '../../src/config/settings.ts';
import { Registry } from 'prom-client';
import { createDetectorMetrics } from '../../detectors/metrics.ts';
import { fleetReport, readFleet, type FleetReport } from '../../src/fleet/report.ts';
import { startFleetWatch, type FleetWatch } from '../../src/fleet/watch.ts';
import type { SidecarStatus } from '../../src/fleet/status.ts';
import { createKafkaClient } from '../../src/kafka/client.ts';
import { fetchTopicEnds } from '../../src/kafka/offsets.ts';
import { ensureTopics, palisadeTopics } from '../../src/kafka/topics.ts';
import { createLogger } from '../../src/log/logger.ts';
import { palisade } from '../cli/support/run.ts';
import { createPki, loopbackSidecarEnv, startUpstream, until, type Pki, type Upstream } from '../support/harness.ts';
import { startSidecarProcess, type SidecarProcess } from '../support/sidecar-process.ts';

const brokers = process.env['PALISADE_KAFKA_BROKERS'] ?? '127.0.0.1:19092';
const prefix = `fleet-${randomUUID().slice(0, 8)}`;
const topicEnv = {
  PALISADE_KAFKA_BROKERS: brokers,
  PALISADE_KAFKA_TOPIC_DECISIONS: `${prefix}.decisions`,
  PALISADE_KAFKA_TOPIC_BLOCKLIST: `${prefix}.blocklist`,
  PALISADE_KAFKA_TOPIC_ALERTS: `${prefix}.alerts`,
  PALISADE_KAFKA_TOPIC_SIDECARS: `${prefix}.sidecars`,
  PALISADE_KAFKA_TOPIC_REPLICATION: '1',
  PALISADE_KAFKA_TOPIC_PARTITIONS: '1',
};
const settings = loadSettings(topicEnv);
const logger = createLogger({ level: 'silent' });
const kafka = createKafkaClient(settings, logger);

const policy = (version: string) => `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: orders, version: "${version}" }
spec:
  authorization:
    rules:
      - { id: items, methods: [GET], paths: ["/items/{id}"], public: true }
`;

const dir = mkdtempSync(join(tmpdir(), 'palisade-fleet-'));
let pki: Pki;
let upstream: Upstream;
const sidecars: SidecarProcess[] = [];
// What the detector exports from the same records (palisade_fleet_*), refreshed every 200 ms here.
const metrics = createDetectorMetrics(new Registry(), { processMetrics: false });
let watch: FleetWatch | undefined;
async function gauge(name: string, workload = 'orders'): Promise<number | undefined> {
  const m = await metrics.registry.getSingleMetric(name)?.get();
  return m?.values.find((v) => v.labels['workload'] === workload && v.labels['namespace'] === 'shop')?.value;
}
const policyFile = (i: number) => join(dir, `policy-${i}.yaml`);

beforeAll(async () => {
  pki = await createPki(mkdtempSync(join(dir, 'pki-')));
  upstream = await startUpstream();
  const admin = kafka.admin();
  await admin.connect();
  try {
    const t = palisadeTopics(settings);
    await ensureTopics(admin, [t.blocklist, t.sidecars], logger);
  } finally {
    await admin.disconnect();
  }
  // Three pods of one workload, as a Deployment names them.
  for (let i = 0; i < 3; i++) writeFileSync(policyFile(i), policy('1'));
  const started = await Promise.all(
    [0, 1, 2].map((i) =>
      startSidecarProcess(
        {
          ...loopbackSidecarEnv(pki, upstream.url),
          ...topicEnv,
          PALISADE_POLICY: policyFile(i),
          PALISADE_LOG_LEVEL: 'info',
          PALISADE_POD_NAME: `orders-7c9f8d6b5-x${i}abc`,
          PALISADE_POD_NAMESPACE: 'shop',
          PALISADE_FLEET_STATUS_INTERVAL_MS: '1000',
        },
        60_000,
      ),
    ),
  );
  sidecars.push(...started);
  watch = startFleetWatch({ kafka, topic: topicEnv.PALISADE_KAFKA_TOPIC_SIDECARS, gauges: metrics, logger, refreshMs: 200, blocklistTopic: topicEnv.PALISADE_KAFKA_TOPIC_BLOCKLIST });
}, 120_000);

afterAll(async () => {
  await watch?.close();
  for (const s of sidecars) if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  await upstream?.close();
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: Object.values(topicEnv).filter((v) => v.startsWith(prefix)) }).catch(() => undefined);
  await admin.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

async function records(): Promise<SidecarStatus[]> {
  return readFleet(kafka, topicEnv.PALISADE_KAFKA_TOPIC_SIDECARS, 20_000);
}

/** Polls the topic until the report satisfies `ok`. */
async function reportUntil(ok: (r: FleetReport, recs: SidecarStatus[]) => boolean, o: { staleAfterMs?: number } = {}, timeoutMs = 60_000): Promise<FleetReport> {
  const end = Date.now() + timeoutMs;
  let last: FleetReport | null = null;
  for (;;) {
    const recs = await records();
    last = fleetReport(recs, o);
    if (ok(last, recs)) return last;
    if (Date.now() > end) throw new Error(`fleet report never got there: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const cli = (args: string[]) => palisade(['fleet', 'status', ...args], { env: { ...topicEnv } });

describe('palisade fleet status with three real sidecars', () => {
  it('one workload, three live sidecars on one policy hash: no drift, exit 0', { timeout: 120_000 }, async () => {
    const r = await reportUntil((x) => x.workloads[0]?.sidecars === 3);
    expect(r.drift).toBe(false);
    expect(r.workloads).toHaveLength(1);
    const w = r.workloads[0]!;
    expect(w).toMatchObject({ namespace: 'shop', workload: 'orders', sidecars: 3, drift: false, stale: [], refused: [] });
    expect(w.policies).toHaveLength(1);
    expect(w.policies[0]).toMatchObject({ name: 'orders', version: '1', verified: false });
    const c = await cli(['-o', 'json']);
    expect(c.stderr).toBe('');
    expect(c.code).toBe(0);
    expect((JSON.parse(c.stdout) as FleetReport).workloads[0]?.sidecars).toBe(3);
    const end = Date.now() + 30_000;
    while ((await gauge('palisade_fleet_sidecars')) !== 3 && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
    expect(await gauge('palisade_fleet_sidecars')).toBe(3);
    expect(await gauge('palisade_fleet_policy_hashes')).toBe(1);
    expect(await gauge('palisade_fleet_sidecars_behind_blocklist')).toBe(0);
  });

  it('a block reaches every sidecar: each one\'s block-list position passes it', { timeout: 120_000 }, async () => {
    const t0 = Date.now();
    await publishManualBlock(kafka, topicEnv.PALISADE_KAFKA_TOPIC_BLOCKLIST, { kind: 'ip', value: '203.0.113.9', reason: 'fleet test', expiresAt: null, actor: 'test' });
    const [end] = await fetchTopicEnds(kafka, topicEnv.PALISADE_KAFKA_TOPIC_BLOCKLIST);
    const target = BigInt(end!.high);
    await reportUntil((_r, recs) => recs.length === 3 && recs.every((s) => s.blocklistPosition !== null && BigInt(s.blocklistPosition) >= target));
    // Seen through the status records (published within 250 ms of a change): an upper bound.
    process.stdout.write(`fleet: block applied and acknowledged by 3/3 sidecars within ${Date.now() - t0} ms\n`);

    // A block by the detector: its time to enforce across the fleet is observed once, when all three applied it.
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    try {
      await producer.send({ topic: topicEnv.PALISADE_KAFKA_TOPIC_BLOCKLIST, acks: -1, messages: [encodeBlock({ kind: 'ip', value: '198.51.100.77', reason: 'burst', source: 'detector', expiresAt: null, addedAt: Date.now(), rule: 'burst', detection: 'burst' })] });
    } finally {
      await producer.disconnect();
    }
    const enforced = async () => (await metrics.blockToEnforce.get()).values.find((v) => v.metricName === 'palisade_detector_block_to_enforce_seconds_count')?.value ?? 0;
    const deadline = Date.now() + 30_000;
    while ((await enforced()) < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(await enforced()).toBe(1);
    const sum = (await metrics.blockToEnforce.get()).values.find((v) => v.metricName === 'palisade_detector_block_to_enforce_seconds_sum')?.value ?? -1;
    process.stdout.write(`fleet: detector block enforced by 3/3 sidecars ${Math.round(sum * 1000)} ms after it was published (palisade_detector_block_to_enforce_seconds)\n`);
  });

  it('blocklist add --wait returns once all three applied it; list --acks shows applied 3/3 and the slowest time', { timeout: 120_000 }, async () => {
    const env = { ...topicEnv };
    const add = await palisade(['blocklist', 'add', '--ip', '203.0.113.10', '--reason', 'fleet ack', '--wait', '-o', 'json'], { env });
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    const added = JSON.parse(add.stdout) as { applied: { sidecars: number; applied: number; pending: string[]; slowestMs: number | null } };
    expect(added.applied).toMatchObject({ sidecars: 3, applied: 3, pending: [] });
    expect(added.applied.slowestMs).not.toBeNull();
    process.stdout.write(`fleet: blocklist add --wait: applied 3/3, slowest ${added.applied.slowestMs} ms (sidecar-side, from its status record)\n`);
    const list = await palisade(['blocklist', 'list', '--acks'], { env });
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^KIND\s+VALUE\s+SOURCE\s+EXPIRES\s+RULE\s+APPLIED\s+REASON$/m);
    expect(list.stdout).toMatch(/^ip\s+203\.0\.113\.10\s+manual\s+never\s+manual:ip\s+applied 3\/3, slowest \d+\.\d\d s\s+fleet ack$/m);

    // A sidecar that does not apply it (paused, still counted live): --wait names it after its timeout, exit 1.
    const paused = sidecars[2]!;
    paused.child.kill('SIGSTOP');
    try {
      const late = await palisade(['blocklist', 'add', '--ip', '203.0.113.11', '--reason', 'fleet ack', '--wait', '--wait-timeout', '2s'], { env });
      expect(late.code).toBe(1);
      expect(late.stdout).toMatch(/applied 2\/3.* after 2 s; not yet applied by orders-7c9f8d6b5-x2abc\n$/);
    } finally {
      paused.child.kill('SIGCONT');
    }
  });

  it('a policy rolled to one sidecar is drift (exit 3) until all have it; a refused policy shows its code', { timeout: 180_000 }, async () => {
    writeFileSync(policyFile(0), policy('2'));
    const drift = await reportUntil((x) => x.drift);
    const w = drift.workloads[0]!;
    expect(w.policies.map((p) => [p.version, p.pods.length])).toEqual([
      ['1', 2],
      ['2', 1],
    ]);
    const end = Date.now() + 30_000;
    while ((await gauge('palisade_fleet_policy_hashes')) !== 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
    expect(await gauge('palisade_fleet_policy_hashes')).toBe(2);
    const c = await cli([]);
    expect(c.code).toBe(3);
    expect(c.stdout).toMatch(/^DRIFT +shop +orders +3 +0 /m);
    expect(c.stdout).toMatch(/^drift shop\/orders: [0-9a-f]{64} on orders-7c9f8d6b5-x0abc$/m);

    writeFileSync(policyFile(1), policy('2'));
    writeFileSync(policyFile(2), policy('2'));
    const clear = await reportUntil((x) => !x.drift && x.workloads[0]?.policies[0]?.version === '2');
    expect(clear.workloads[0]!.policies[0]!.pods).toHaveLength(3);
    expect((await cli([])).code).toBe(0);

    writeFileSync(policyFile(1), 'apiVersion: palisade.dev/v1\nkind: Policy\nmetadata: {name: x\n');
    const refused = await reportUntil((x) => (x.workloads[0]?.refused.length ?? 0) > 0);
    expect(refused.workloads[0]!.refused[0]).toMatchObject({ pod: 'orders-7c9f8d6b5-x1abc', code: 'POLICY_UNREADABLE' });
    expect(refused.drift).toBe(false); // the previous policy stays in force
  });

  it('a sidecar stopped cleanly leaves the count at once; one killed goes stale', { timeout: 120_000 }, async () => {
    const s2 = sidecars[2]!;
    s2.child.kill('SIGTERM');
    expect((await s2.exited).code).toBe(0);
    const two = await reportUntil((x) => x.workloads[0]?.sidecars === 2);
    expect(two.workloads[0]!.stale).toEqual([]);

    const s1 = sidecars[1]!;
    s1.child.kill('SIGKILL');
    await s1.exited;
    const one = await reportUntil((x) => x.workloads[0]?.sidecars === 1, { staleAfterMs: 3000 });
    expect(one.workloads[0]!.stale.map((s) => s.pod)).toEqual(['orders-7c9f8d6b5-x1abc']);
    const c = await cli(['--stale-after', '3s']);
    expect(c.code).toBe(0);
    expect(c.stdout).toMatch(/^stale shop\/orders: orders-7c9f8d6b5-x1abc \(last seen /m);
  });
});
