// The detector's state restore when the broker answers badly at the wrong moment: right after the
// group assigns partitions, reading the state topic's ends fails (seen in CI on a loaded broker:
// "This server is not the leader for that topic-partition", and the detector never became ready).
// Faults are injected into the admin client's answers; everything else is the real broker.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readState } from '../../detectors/kafka/restore.ts';
import { failFirstBatch, failTopicOffsets } from '../support/kafka-faults.ts';
import { captureLog } from '../support/log-capture.ts';
import { TEST_CONFIG } from './support/config.ts';
import { createWorld, eventually, type World } from './support/kafka-env.ts';

describe('detector state restore on a broker that answers badly', () => {
  let world: World;
  beforeAll(async () => {
    world = createWorld('restore');
    // Topics created (and the state topic written once) by a first detector.
    const first = await world.detector(TEST_CONFIG);
    await first.close();
  });
  afterAll(() => world?.close());

  it('retries the restore of its assigned partitions until it succeeds, and becomes ready', { timeout: 60_000 }, async () => {
    const notLeader = Object.assign(new Error('This server is not the leader for that topic-partition'), { name: 'KafkaJSProtocolError', type: 'NOT_LEADER_FOR_PARTITION', retriable: true });
    const timedOut = Object.assign(new Error('Request ListOffsets(key: 2, version: 3) timed out'), { name: 'KafkaJSRequestTimeoutError', retriable: false });
    const f = failTopicOffsets(world.kafka, world.stateTopic, [notLeader, notLeader, timedOut]);
    const c = captureLog('debug');
    const d = await world.detector(TEST_CONFIG, undefined, { kafka: f.kafka, logger: c.logger });
    await eventually(() => d.ready(), 30_000, 'detector ready');
    expect(d.stats().assigned).toEqual([0, 1, 2]);
    // Two unsettled answers asked again quietly; the third fault failed one restore, which was retried.
    expect(f.calls()).toBe(4);
    const recs = c.records();
    expect(recs.filter((l) => l['msg'] === 'partition leaders not settled; asking again')).toHaveLength(2);
    const failed = recs.filter((l) => l['msg'] === 'detector state restore failed; retrying');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ level: 40, err: 'Request ListOffsets(key: 2, version: 3) timed out' });
    expect(recs.some((l) => l['msg'] === 'baselines restored from the state topic')).toBe(true);
    expect(recs.filter((l) => (l['level'] as number) >= 50)).toEqual([]);
    await d.close();
  });

  it('starts its decisions consumer again after a crash kafkajs does not restart, and consumes on', { timeout: 60_000 }, async () => {
    // The decisions consumer's first batch fails with an error kafkajs does not retry.
    const f = failFirstBatch(world.kafka, (group) => group === world.groupId);
    const c = captureLog('warn');
    const d = await world.detector(TEST_CONFIG, undefined, { kafka: f.kafka, logger: c.logger });
    await eventually(() => d.ready(), 30_000, 'detector ready');
    const restarted = () => c.records().some((l) => l['msg'] === 'detector decisions: consumer stopped on an error kafkajs does not retry; starting it again');
    const producer = world.kafka.producer();
    await producer.connect();
    try {
      const send = () => producer.send({ topic: world.settings.kafkaTopicDecisions, messages: [{ key: 'k', value: '{"not":"an event"}' }] });
      await send(); // its batch crashes the consumer
      await eventually(restarted, 30_000, 'restart logged');
      // Started again, in the group again (no offset was committed for the failed batch, and a
      // new member starts at the end, so that event is not replayed: the next one is consumed).
      await eventually(() => d.ready() && f.batches() === 1, 30_000, 'ready again');
      const end = Date.now() + 30_000;
      while (d.stats().consumed === 0 && Date.now() < end) {
        await send();
        await new Promise((r) => setTimeout(r, 500));
      }
    } finally {
      await producer.disconnect();
    }
    expect(d.stats().consumed).toBeGreaterThanOrEqual(1);
    expect(d.stats().invalid).toBe(d.stats().consumed);
    expect(c.records().filter((l) => l['msg'] === 'detector decisions: consumer stopped on an error kafkajs does not retry; starting it again')).toHaveLength(1);
    await d.close();
  });

  it('fails a restore whose reader crashed for good (the caller retries it) rather than return part of the state', { timeout: 60_000 }, async () => {
    const producer = world.kafka.producer();
    await producer.connect();
    await producer.send({ topic: world.stateTopic, messages: [{ partition: 0, key: 'spiffe://test/restore-reader', value: '{}' }] });
    await producer.disconnect();
    const f = failFirstBatch(world.kafka, (group) => group.includes('.restore.'));
    const read = readState({ kafka: f.kafka, topic: world.stateTopic, partitions: [0], groupPrefix: world.groupId, logger: captureLog('warn').logger, timeoutMs: 50_000 });
    await expect(read).rejects.toThrow('injected: batch handler failed');
    // The next attempt reads it all.
    const again = await readState({ kafka: f.kafka, topic: world.stateTopic, partitions: [0], groupPrefix: world.groupId, logger: captureLog('warn').logger });
    expect(again.clients.get(0)?.has('spiffe://test/restore-reader')).toBe(true);
  });
});
