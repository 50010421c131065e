// Reading the block list to its end (`palisade blocklist list`) on the real broker: what is in
// force, and a reader whose consumer crashes for good fails with that error at once instead of
// waiting out its timeout.
import { randomUUID } from 'node:crypto';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishManualBlock, publishManualUnblock, readBlockList } from '../../src/blocklist/kafka-ops.ts';
import { failFirstBatch } from '../support/kafka-faults.ts';
import { createTopic } from '../support/kafka-topics.ts';

const { Kafka, logLevel } = kafkajs;
const BROKERS = (process.env['PALISADE_KAFKA_BROKERS'] ?? '127.0.0.1:19092').split(',');

describe('readBlockList', () => {
  const kafka = new Kafka({ clientId: 'palisade-ops-test', brokers: BROKERS, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const topic = `palisade-test-ops-${randomUUID().slice(0, 8)}`;
  beforeAll(async () => {
    await admin.connect();
    await createTopic(admin, { topic, numPartitions: 2, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] });
    await publishManualBlock(kafka, topic, { kind: 'ip', value: '203.0.113.20', reason: 'ops test', expiresAt: null, actor: 'test' });
    await publishManualBlock(kafka, topic, { kind: 'ip', value: '203.0.113.21', reason: 'ops test', expiresAt: null, actor: 'test' });
    await publishManualUnblock(kafka, topic, { kind: 'ip', value: '203.0.113.21', actor: 'test', reason: null });
  });
  afterAll(async () => {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  });

  it('returns what is in force', async () => {
    expect((await readBlockList(kafka, topic)).map((r) => r.value)).toEqual(['203.0.113.20']);
  });

  it('fails with the error of a consumer that crashed for good, not with a timeout', async () => {
    const f = failFirstBatch(kafka);
    await expect(readBlockList(f.kafka, topic, Date.now(), 60_000)).rejects.toThrow('injected: batch handler failed');
    expect(f.batches()).toBe(1);
  });
});
