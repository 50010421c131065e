// Creating Palisade's topics on the real broker: created with their settings and usable at once,
// safe when two processes create them together, and robust to a broker that still answers
// "This server does not host this topic-partition" right after it created one (seen in CI).
import { randomUUID } from 'node:crypto';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awaitLeaders, ensureTopics, type TopicSpec } from '../../src/kafka/topics.ts';
import { captureLog } from '../support/log-capture.ts';

const { Kafka, logLevel } = kafkajs;
const BROKERS = (process.env['PALISADE_KAFKA_BROKERS'] ?? '127.0.0.1:19092').split(',');


const spec = (name: string, partitions: number): TopicSpec => ({ role: 'blocklist', name, partitions, replicationFactor: 1, config: { 'cleanup.policy': 'compact' } });

describe('ensureTopics on the real broker', () => {
  const kafka = new Kafka({ clientId: 'palisade-topics-test', brokers: BROKERS, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const made: string[] = [];
  beforeAll(() => admin.connect());
  afterAll(async () => {
    await admin.deleteTopics({ topics: made }).catch(() => undefined);
    await admin.disconnect();
  });

  it('creates the missing topics with a leader for every partition, and a producer can write at once', async () => {
    const name = `palisade-test-topics-${randomUUID().slice(0, 8)}`;
    made.push(name);
    const c = captureLog('info');
    const r = await ensureTopics(admin, [spec(name, 3)], c.logger);
    expect(r).toEqual({ created: [name], existing: [] });
    const { topics } = await admin.fetchTopicMetadata({ topics: [name] });
    expect(topics[0]!.partitions).toHaveLength(3);
    expect(topics[0]!.partitions.every((p) => p.leader >= 0)).toBe(true);
    expect(c.records().some((l) => l['msg'] === 'kafka topics created')).toBe(true);
    const producer = kafka.producer({ retry: { retries: 0 } });
    await producer.connect();
    try {
      await producer.send({ topic: name, messages: [{ key: 'k', value: 'v' }] });
    } finally {
      await producer.disconnect();
    }
  });

  it('two processes creating the same topics at once both succeed; one of them finds them existing', async () => {
    const name = `palisade-test-topics-${randomUUID().slice(0, 8)}`;
    made.push(name);
    const other = kafka.admin();
    await other.connect();
    try {
      const [a, b] = await Promise.all([ensureTopics(admin, [spec(name, 2)], captureLog('info').logger), ensureTopics(other, [spec(name, 2)], captureLog('info').logger)]);
      expect([...a.created, ...b.created].filter((t) => t === name)).toHaveLength(1);
      expect([...a.created, ...a.existing]).toEqual([name]);
      expect([...b.created, ...b.existing]).toEqual([name]);
    } finally {
      await other.disconnect();
    }
  });
});

describe('awaitLeaders (faults injected into the metadata answers)', () => {
  const notHosted = () => Object.assign(new Error('This server does not host this topic-partition'), { retriable: true, type: 'UNKNOWN_TOPIC_OR_PARTITION' });
  const ok = { topics: [{ name: 't', partitions: [{ partitionId: 0, leader: 1 }] }] };

  it('retries what a broker answers while it propagates a new topic, until every partition has a leader', async () => {
    const answers: (() => unknown)[] = [
      () => {
        throw notHosted();
      },
      () => ({ topics: [{ name: 't', partitions: [{ partitionId: 0, leader: -1 }] }] }),
      () => ok,
    ];
    let calls = 0;
    const admin = { fetchTopicMetadata: async () => answers[calls++]!() } as unknown as Parameters<typeof awaitLeaders>[0];
    await awaitLeaders(admin, ['t'], captureLog('info').logger);
    expect(calls).toBe(3);
  });

  it('throws what is not retriable, and gives up with a warning (not an error) after the time allowed', async () => {
    const fatal = { fetchTopicMetadata: async () => Promise.reject(Object.assign(new Error('Not authorized to access topics'), { retriable: false })) } as unknown as Parameters<typeof awaitLeaders>[0];
    await expect(awaitLeaders(fatal, ['t'], captureLog('info').logger)).rejects.toThrow('Not authorized');
    const never = { fetchTopicMetadata: async () => Promise.reject(notHosted()) } as unknown as Parameters<typeof awaitLeaders>[0];
    const c = captureLog('info');
    await awaitLeaders(never, ['t'], c.logger, 300);
    expect(c.records().find((l) => l['level'] === 40)).toMatchObject({ msg: 'kafka topics created, but not every partition has a leader yet; producers will retry', last: 'This server does not host this topic-partition' });
  });
});
