// The quota aggregator on the real broker, restarted in the middle of a window: it rebuilds its
// counts from the decisions of the last replayMs when it joins its group, so the requests counted
// before the restart still count after it, and the key goes over quota exactly at its limit.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startQuotaAggregator } from '../../detectors/quota/aggregator.ts';
import { prepareTopics, type DetectorTopics } from '../../detectors/kafka/topics.ts';
import { PRODUCER_OPTIONS } from '../../detectors/kafka/outputs.ts';
import { encodeDecisionJson } from '../../src/decision/encode.ts';
import { createLogger } from '../../src/log/logger.ts';
import { startQuotaFeed, type QuotaFeed } from '../../src/ratelimit/quota-feed.ts';
import type { QuotaRecord } from '../../src/ratelimit/quota-record.ts';
import { QuotaStore } from '../../src/ratelimit/quota-store.ts';
import { jwtAllowRecord } from '../decision/ocsf/records.ts';
import { createWorld, eventually, type World } from './support/kafka-env.ts';

const HOUR = 3_600_000;
const LIMIT = 8;

describe('quota aggregator restart (real broker)', () => {
  let world: World;
  let topics: DetectorTopics;
  let feed: QuotaFeed;
  const seen: QuotaRecord[] = [];
  const logger = createLogger({ level: 'silent' });
  const producer = () => world.kafka.producer(PRODUCER_OPTIONS);

  beforeAll(async () => {
    world = createWorld('quota-agg');
    topics = await prepareTopics(world.kafka, { ...world.settings, kafkaCreateTopics: true }, world.stateTopic, logger);
    feed = startQuotaFeed({ kafka: world.kafka, topic: topics.quotas, store: new QuotaStore(), logger, onRecord: (r) => seen.push(r) });
    await feed.ready;
  }, 60_000);
  afterAll(async () => {
    await feed?.close();
    await world?.close();
  }, 60_000);

  it('keeps the counts of the window across a restart: over quota at exactly the limit', { timeout: 120_000 }, async () => {
    const p = producer();
    await p.connect();
    const tenant = `tenant-${randomUUID().slice(0, 8)}`;
    const send = async (n: number) => {
      const messages = Array.from({ length: n }, () => {
        const r = { ...jwtAllowRecord({ id: randomUUID(), time: Date.now() }), quotas: [{ rule: 'per-tenant', key: tenant, limit: LIMIT, windowMs: HOUR }] };
        return { key: tenant, value: encodeDecisionJson(r, 'standard') };
      });
      await p.send({ topic: topics.decisions, messages });
    };
    const groupId = `${world.groupId}.quotas`;
    const start = () => startQuotaAggregator({ kafka: world.kafka, producer: p, decisionsTopic: topics.decisions, quotasTopic: topics.quotas, groupId, logger, fairShare: false, replayMs: 60_000 });

    const first = start();
    await first.joined;
    await send(LIMIT - 3);
    await eventually(() => first.stats().counted === LIMIT - 3, 20_000, 'first aggregator counted');
    expect(seen.filter((r) => r.key === tenant)).toEqual([]);
    await first.close();

    // Two more while no aggregator runs, then a new one: it re-reads the window's decisions.
    await send(2);
    const second = start();
    await second.joined;
    await eventually(() => second.stats().counted === LIMIT - 1, 20_000, 'second aggregator rebuilt the counts');
    expect(seen.filter((r) => r.key === tenant)).toEqual([]);
    await send(1);
    await eventually(() => seen.some((r) => r.key === tenant), 20_000, 'over quota published');
    const over = seen.find((r) => r.key === tenant)!;
    expect(over).toMatchObject({ state: 'over', rule: 'per-tenant', count: LIMIT, limit: LIMIT });
    await second.close();
    await p.disconnect();
  });

  it('ends an entry after its window: a tombstone on the topic, so compaction drops the key', { timeout: 60_000 }, async () => {
    const p = producer();
    await p.connect();
    const tenant = `tenant-${randomUUID().slice(0, 8)}`;
    const agg = startQuotaAggregator({ kafka: world.kafka, producer: p, decisionsTopic: topics.decisions, quotasTopic: topics.quotas, groupId: `${world.groupId}.quotas-end`, logger, fairShare: false });
    await agg.joined;
    const r = { ...jwtAllowRecord({ id: randomUUID(), time: Date.now() }), quotas: [{ rule: 'per-second', key: tenant, limit: 1, windowMs: 1000 }] };
    await p.send({ topic: topics.decisions, messages: [{ key: tenant, value: encodeDecisionJson(r, 'standard') }] });
    // Over at once (a limit of 1), then a tombstone once the second has passed.
    const ends: string[] = [];
    const c = world.kafka.consumer({ groupId: `${world.groupId}.reader-${randomUUID()}`, maxWaitTimeInMs: 100 });
    await c.connect();
    await c.subscribe({ topics: [topics.quotas], fromBeginning: true });
    void c.run({
      eachMessage: async ({ message }) => {
        if (message.value === null && message.key?.toString('utf8').includes(tenant)) ends.push(message.key.toString('utf8'));
      },
    });
    await eventually(() => ends.length === 1, 20_000, 'tombstone written');
    expect(JSON.parse(ends[0] as string)).toEqual([r.policy?.name ?? '', 'per-second', tenant]);
    expect(seen.filter((x) => x.key === tenant).map((x) => x.state)).toEqual(['over']);
    await c.disconnect();
    await agg.close();
    await p.disconnect();
  });
});
