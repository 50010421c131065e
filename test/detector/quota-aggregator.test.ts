// The quota aggregator on the real broker (decisions topic of 3 partitions): its counts are
// checkpointed to the counts topic with the offsets they are valid at, so a restart or a
// rebalance resumes them exactly, and several instances in one group add up each other's
// published counts, so a tenant whose clients land on partitions of both is counted whole. A lost
// aggregator fails open for global quotas only.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Producer } from 'kafkajs';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startQuotaAggregator, type QuotaAggregator } from '../../detectors/quota/aggregator.ts';
import { prepareTopics, type DetectorTopics } from '../../detectors/kafka/topics.ts';
import { PRODUCER_OPTIONS } from '../../detectors/kafka/outputs.ts';
import { createDetectorMetrics } from '../../detectors/metrics.ts';
import { encodeDecisionJson } from '../../src/decision/encode.ts';
import { createKafkaSink } from '../../src/decision/sinks/kafka/index.ts';
import { createLogger } from '../../src/log/logger.ts';
import { startQuotaFeed, type QuotaFeed } from '../../src/ratelimit/quota-feed.ts';
import type { QuotaRecord } from '../../src/ratelimit/quota-record.ts';
import { quotaStore, QuotaStore } from '../../src/ratelimit/quota-store.ts';
import { quotaStoreKey } from '../../src/ratelimit/quota-record.ts';
import { send as request, startHarness } from '../support/harness.ts';
import { jwtAllowRecord } from '../decision/ocsf/records.ts';
import { createWorld, eventually, type World } from './support/kafka-env.ts';

const HOUR = 3_600_000;
const PARTITIONS = [0, 1, 2];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('quota aggregator: checkpoints, restarts, rebalances, several instances (real broker)', () => {
  let world: World;
  let topics: DetectorTopics;
  let feed: QuotaFeed;
  let p: Producer;
  const seen: { at: number; record: QuotaRecord }[] = [];
  const logger = createLogger({ level: 'silent' });
  const running: QuotaAggregator[] = [];
  const workload = jwtAllowRecord().policy?.name ?? '';

  beforeAll(async () => {
    world = createWorld('quota-agg');
    topics = await prepareTopics(world.kafka, { ...world.settings, kafkaCreateTopics: true }, world.stateTopic, logger);
    feed = startQuotaFeed({ kafka: world.kafka, topic: topics.quotas, store: new QuotaStore(), logger, onRecord: (record) => seen.push({ at: Date.now(), record }) });
    await feed.ready;
    p = world.kafka.producer(PRODUCER_OPTIONS);
    await p.connect();
  }, 60_000);
  afterAll(async () => {
    await Promise.allSettled(running.map((a) => a.close()));
    await p?.disconnect();
    await feed?.close();
    await world?.close();
    const admin = world.kafka.admin();
    await admin.connect();
    await admin.deleteGroups(['a', 'a2', 'b', 'c', 'd', 'end'].map((g) => `${world.groupId}.quotas-${g}`)).catch(() => undefined);
    await admin.disconnect();
  }, 60_000);

  /** `n` decisions charging `tenant`'s quota, each from its own client, round-robin over the partitions. */
  async function send(tenant: string, limit: number, n: number, windowMs = HOUR, partitions = PARTITIONS): Promise<void> {
    const messages = Array.from({ length: n }, (_, i) => {
      const r = { ...jwtAllowRecord({ id: randomUUID(), time: Date.now() }), quotas: [{ rule: 'per-tenant', key: tenant, limit, windowMs }] };
      return { key: `client-${randomUUID()}`, partition: partitions[i % partitions.length]!, value: encodeDecisionJson(r, 'standard') };
    });
    await p.send({ topic: topics.decisions, messages });
  }
  function start(group: string, o: { checkpointMs?: number; running?: { set(v: number): void } } = {}): QuotaAggregator {
    const a = startQuotaAggregator({ kafka: world.kafka, producer: p, decisionsTopic: topics.decisions, quotasTopic: topics.quotas, countsTopic: topics.quotaCounts, groupId: `${world.groupId}.${group}`, logger, fairShare: false, replayMs: 0, checkpointMs: o.checkpointMs ?? 300, ...(o.running ? { running: o.running } : {}) });
    running.push(a);
    return a;
  }
  const recordsOf = (tenant: string) => seen.filter((x) => x.record.key === tenant).map((x) => x.record);
  const total = (a: QuotaAggregator, tenant: string) => a.total(workload, 'per-tenant', tenant);
  /** Both instances are in the group, own disjoint partitions covering the topic, and have restored them. */
  async function split(a: QuotaAggregator, b: QuotaAggregator): Promise<void> {
    await eventually(() => {
      const x = a.stats().assigned;
      const y = b.stats().assigned;
      return x.length > 0 && y.length > 0 && x.length + y.length === PARTITIONS.length && [...x, ...y].sort().join() === PARTITIONS.join();
    }, 60_000, 'partitions split between the two instances');
    await Promise.all([a.joined, b.joined]);
  }

  it('(a) an aggregator stopped mid-window and started again keeps the count of a 1-hour window: over at exactly the limit', { timeout: 120_000 }, async () => {
    const LIMIT = 12;
    const tenant = `tenant-${randomUUID().slice(0, 8)}`;
    const first = start('quotas-a');
    await first.joined;
    await send(tenant, LIMIT, LIMIT - 4);
    await eventually(() => total(first, tenant) === LIMIT - 4, 20_000, 'first aggregator counted');
    await first.close();

    // Two more while no aggregator runs. The replay window is 0: only the checkpoint can bring the
    // first ten back, and only the committed offsets the two after it.
    await send(tenant, LIMIT, 2);
    const second = start('quotas-a');
    await second.joined;
    await eventually(() => total(second, tenant) === LIMIT - 2, 20_000, 'second aggregator restored and caught up');
    expect(second.stats().restored).toBeGreaterThan(0);
    expect(second.stats().counted).toBe(2);
    await send(tenant, LIMIT, 1);
    await eventually(() => total(second, tenant) === LIMIT - 1, 20_000, 'one more counted');
    await sleep(500);
    expect(recordsOf(tenant)).toEqual([]);
    await send(tenant, LIMIT, 1);
    await eventually(() => recordsOf(tenant).length > 0, 20_000, 'over quota published');
    expect(recordsOf(tenant)[0]).toMatchObject({ state: 'over', rule: 'per-tenant', count: LIMIT, limit: LIMIT });
    await second.close();
  });

  it('(a2) an aggregator killed (SIGKILL: no last checkpoint) and started again counts what came after its last checkpoint exactly once', { timeout: 180_000 }, async () => {
    const LIMIT = 40;
    const tenant = `tenant-${randomUUID().slice(0, 8)}`;
    // A long interval (10 s): one checkpoint after the first 10, none after the next 12.
    const child = spawn(process.execPath, ['test/detector/support/quota-aggregator-child.ts', JSON.stringify({ env: world.env, decisions: topics.decisions, quotas: topics.quotas, counts: topics.quotaCounts, groupId: `${world.groupId}.quotas-a2`, checkpointMs: 10_000 })], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((r) => child.once('exit', r));
    let stats = { counted: 0, checkpoints: 0, assigned: [] as number[] };
    createInterface({ input: child.stdout }).on('line', (l) => (stats = JSON.parse(l) as typeof stats));
    try {
      // It prints once it has joined its group.
      await eventually(() => stats.assigned.length === 3, 60_000, 'child aggregator joined');
      await send(tenant, LIMIT, 10);
      await eventually(() => stats.counted === 10, 20_000, 'child counted the first 10');
      const before = stats.checkpoints;
      await eventually(() => stats.checkpoints > before, 20_000, 'child checkpointed them');
      await send(tenant, LIMIT, 12);
      await eventually(() => stats.counted === 22, 20_000, 'child counted the next 12');
      expect(stats.checkpoints).toBe(before + 1);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
    // The killed member stays in the group until its session times out (30 s): the new one waits for that.
    const again = start('quotas-a2');
    await again.joined;
    await eventually(() => total(again, tenant) === 22, 60_000, 'restarted aggregator: the checkpoint plus the events after it');
    await sleep(1000);
    expect(total(again, tenant)).toBe(22);
    expect(again.stats().counted).toBe(12);
    expect(recordsOf(tenant)).toEqual([]);
    await send(tenant, LIMIT, LIMIT - 22 - 1);
    await eventually(() => total(again, tenant) === LIMIT - 1, 20_000, 'counted up to one below the limit');
    expect(recordsOf(tenant)).toEqual([]);
    await send(tenant, LIMIT, 1);
    await eventually(() => recordsOf(tenant).length > 0, 20_000, 'over quota published');
    expect(recordsOf(tenant)[0]).toMatchObject({ state: 'over', count: LIMIT, limit: LIMIT });
    await again.close();
  });

  it('(b) two instances in one group, one tenant on partitions of both: over at N, not when one instance alone reaches N', { timeout: 180_000 }, async () => {
    // The default checkpoint interval (1 s): the figure printed below is the one docs/quotas.md gives.
    const a = start('quotas-b', { checkpointMs: 1000 });
    await a.joined;
    const b = start('quotas-b', { checkpointMs: 1000 });
    await split(a, b);

    // Slowly to N - 1: each instance sees the whole (its partitions live, the other's as published).
    const N = 20;
    const tenant = `tenant-${randomUUID().slice(0, 8)}`;
    await send(tenant, N, N - 1);
    await eventually(() => total(a, tenant) === N - 1 && total(b, tenant) === N - 1, 20_000, 'both instances see the total');
    expect(recordsOf(tenant)).toEqual([]);
    await send(tenant, N, 1, HOUR, [a.stats().assigned[0]!]);
    await eventually(() => recordsOf(tenant).length > 0, 20_000, 'over quota published');
    // Whichever instance saw it first; the other may publish the same verdict from the published counts.
    for (const r of recordsOf(tenant)) expect(r).toMatchObject({ state: 'over', count: N, limit: N });

    // At a steady rate: how many decisions are sent between the N-th and the "over" record's
    // arrival (what sidecars would let through meanwhile without fair shares).
    const M = 400;
    const steady = `tenant-${randomUUID().slice(0, 8)}`;
    let sent = 0;
    let crossedAt = 0;
    let views = '';
    const RATE = 40;
    for (let i = 0; recordsOf(steady).length === 0 && i < 3 * M; i++) {
      const t0 = Date.now();
      await send(steady, M, 1, HOUR, [PARTITIONS[i % 3]!]);
      sent++;
      if (sent === M) {
        crossedAt = Date.now();
        views = `${total(a, steady)} / ${total(b, steady)}`;
      }
      await sleep(Math.max(0, 1000 / RATE - (Date.now() - t0)));
    }
    const over = seen.find((x) => x.record.key === steady);
    expect(over).toBeDefined();
    const sentBeforeOver = sent;
    console.log(`quota aggregator, 2 instances, partitions ${a.stats().assigned.join(',')} | ${b.stats().assigned.join(',')}: quota ${M}, ~${RATE}/s over 3 partitions: "over" published at count ${over?.record.count}, ${sentBeforeOver} sent when it arrived (+${sentBeforeOver - M}, ${(((sentBeforeOver - M) / M) * 100).toFixed(1)}% of the quota), ${(over?.at ?? 0) - crossedAt} ms after the N-th was sent; the instances' totals when it was sent: ${views}`);
    // One instance alone would have waited for its own part to reach M (at least 1.5 M in all).
    expect(over?.record.count).toBeGreaterThanOrEqual(M);
    expect(sentBeforeOver).toBeLessThan(Math.ceil(1.25 * M));
    await Promise.all([a.close(), b.close()]);
  });

  it('(c) a rebalance (a second instance joins) keeps the counts: over at exactly the limit', { timeout: 180_000 }, async () => {
    const LIMIT = 16;
    const tenant = `tenant-${randomUUID().slice(0, 8)}`;
    const a = start('quotas-c');
    await a.joined;
    expect(a.stats().assigned).toEqual(PARTITIONS);
    await send(tenant, LIMIT, LIMIT - 4);
    await eventually(() => total(a, tenant) === LIMIT - 4, 20_000, 'first instance counted');
    // The second joins at once: partitions move, some with events not checkpointed yet (replayed
    // from the last commit, the checkpoint's part skipped).
    const b = start('quotas-c');
    await split(a, b);
    await eventually(() => total(a, tenant) === LIMIT - 4 && total(b, tenant) === LIMIT - 4, 30_000, 'both instances see the count after the rebalance');
    await send(tenant, LIMIT, 3);
    await eventually(() => total(a, tenant) === LIMIT - 1 && total(b, tenant) === LIMIT - 1, 20_000, 'both see the next three');
    expect(recordsOf(tenant)).toEqual([]);
    await send(tenant, LIMIT, 1, HOUR, [b.stats().assigned[0]!]);
    await eventually(() => recordsOf(tenant).length > 0, 20_000, 'over quota published');
    for (const r of recordsOf(tenant)) expect(r).toMatchObject({ state: 'over', count: LIMIT, limit: LIMIT });
    await Promise.all([a.close(), b.close()]);
  });

  it('(d) a lost aggregator fails open for global quotas only: local limits still apply, entries already published stay, the alert\'s gauge drops to 0', { timeout: 120_000 }, async () => {
    const POLICY = `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: quota-lost, version: "1" }
spec:
  authorization:
    rules:
      - { id: open, paths: ["/**"], public: true }
  rateLimits:
    rules:
      - { id: per-client, key: [identity], rate: 1, per: hour, burst: 8, paths: ["/api/**"] }
      - { id: fleet, scope: global, key: [identity], limit: 3, window: hour, paths: ["/api/**"] }
`;
    const metrics = createDetectorMetrics(new Registry(), { processMetrics: false });
    const gauge = async () => (await metrics.quotaAggregatorRunning.get()).values[0]?.value;
    const agg = start('quotas-d', { running: metrics.quotaAggregatorRunning });
    await agg.joined;
    expect(await gauge()).toBe(1);
    const h = await startHarness(POLICY, { env: world.env, sink: await createKafkaSink(world.settings, logger) });
    try {
      const X = 'spiffe://test.local/ns/shop/sa/x';
      const Y = 'spiffe://test.local/ns/shop/sa/y';
      const x = await h.client(X);
      const url = `${h.base}/api/orders`;
      // With the aggregator: X is refused by the global quota once the fleet counted 3.
      for (let i = 0; i < 3; i++) expect((await request(x, url)).status).toBe(200);
      await eventually(() => quotaStore(h.services).get(quotaStoreKey('quota-lost', 'fleet', X), Date.now())?.state === 'over', 20_000, 'over quota at the sidecar');
      expect((await request(x, url)).json).toMatchObject({ code: 'QUOTA_EXCEEDED' });

      // The aggregator is lost: its gauge (what PalisadeQuotaAggregatorDown reads) says so.
      await agg.close();
      expect(await gauge()).toBe(0);
      // Y goes past the global quota (fails open) up to the local bucket, which still refuses.
      const y = await h.client(Y);
      const statuses: (number | string)[] = [];
      for (let i = 0; i < 9; i++) {
        const r = await request(y, url);
        statuses.push(r.status === 429 ? (r.json as { code: string }).code : r.status);
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 'RATE_LIMITED']);
      // What was published before stays in force until its window ends.
      expect((await request(x, url)).json).toMatchObject({ code: 'QUOTA_EXCEEDED' });
    } finally {
      await h.close();
    }
  });

  it('ends an entry after its window: tombstones on the quota topic and the counts topic, so compaction drops the keys', { timeout: 60_000 }, async () => {
    const tenant = `tenant-${randomUUID().slice(0, 8)}`;
    const agg = start('quotas-end');
    await agg.joined;
    // A 5-second window, sent at its start: the checkpoint (every 300 ms) writes the count well
    // before the window ends, even on a loaded machine.
    await sleep(5000 - (Date.now() % 5000));
    await send(tenant, 1, 1, 5000, [0]);
    const ends: string[] = [];
    const c = world.kafka.consumer({ groupId: `${world.groupId}.reader-${randomUUID()}`, maxWaitTimeInMs: 100 });
    await c.connect();
    await c.subscribe({ topics: [topics.quotas, topics.quotaCounts], fromBeginning: true });
    void c.run({
      eachMessage: async ({ topic, message }) => {
        if (message.value === null && message.key?.toString('utf8').includes(tenant)) ends.push(`${topic === topics.quotas ? 'quota' : 'count'} ${message.key.toString('utf8')}`);
      },
    });
    await eventually(() => ends.length === 2, 20_000, 'tombstones written');
    expect(ends.sort()).toEqual([`count ${JSON.stringify([0, workload, 'per-tenant', tenant])}`, `quota ${JSON.stringify([workload, 'per-tenant', tenant])}`]);
    expect(recordsOf(tenant).map((x) => x.state)).toEqual(['over']);
    await c.disconnect();
    await agg.close();
  });
});
