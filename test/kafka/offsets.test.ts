// Reading a topic's ends: on the real broker, and with the answers a broker gives while a
// partition's leader is not settled injected (kafkajs's fetchTopicOffsets gives up on them at once;
// a detector failed to start on "This server is not the leader for that topic-partition" in CI).
import { randomUUID } from 'node:crypto';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchTopicEnds, leaderUnsettled } from '../../src/kafka/offsets.ts';
import { captureLog } from '../support/log-capture.ts';

const { Kafka, logLevel } = kafkajs;
const BROKERS = (process.env['PALISADE_KAFKA_BROKERS'] ?? '127.0.0.1:19092').split(',');

type Answer = () => { partition: number; offset: string; high: string; low: string }[];
const protocolError = (message: string, type: string, retriable: boolean) => Object.assign(new Error(message), { name: 'KafkaJSProtocolError', type, retriable });
const notLeader = () => protocolError('This server is not the leader for that topic-partition', 'NOT_LEADER_FOR_PARTITION', true);
const ends = [{ partition: 0, offset: '7', high: '7', low: '2' }];

/** A kafka client whose admins answer fetchTopicOffsets from the list, one answer per admin; counts connects and disconnects. */
function scripted(answers: Answer[]) {
  const seen = { admins: 0, connects: 0, disconnects: 0 };
  const kafka = {
    admin: () => {
      seen.admins++;
      const answer = answers.shift();
      return {
        connect: async () => void seen.connects++,
        disconnect: async () => void seen.disconnects++,
        fetchTopicOffsets: async () => {
          if (!answer) throw new Error('no answer scripted');
          return answer();
        },
      };
    },
  } as unknown as Parameters<typeof fetchTopicEnds>[0];
  return { kafka, seen };
}

describe('fetchTopicEnds (faults injected)', () => {
  it('asks again, with a fresh admin each time, while the leader is not settled', async () => {
    const c = captureLog('debug');
    const { kafka, seen } = scripted([
      () => {
        throw notLeader();
      },
      () => {
        throw protocolError('There is no leader for this topic-partition as we are in the middle of a leadership election', 'LEADER_NOT_AVAILABLE', true);
      },
      () => ends,
    ]);
    expect(await fetchTopicEnds(kafka, 't', { logger: c.logger })).toEqual([{ partition: 0, low: 2n, high: 7n }]);
    expect(seen).toEqual({ admins: 3, connects: 3, disconnects: 3 });
    expect(c.records().filter((l) => l['msg'] === 'partition leaders not settled; asking again').map((l) => l['attempt'])).toEqual([0, 1]);
  });

  it('sees the unsettled answer inside the error kafkajs throws after its own retries', () => {
    const wrapped = Object.assign(new Error('Number of retries exceeded'), { name: 'KafkaJSNumberOfRetriesExceeded', retriable: false, originalError: notLeader() });
    expect(leaderUnsettled(wrapped)).toBe(true);
    expect(leaderUnsettled(Object.assign(new Error('x'), { cause: notLeader() }))).toBe(true);
    expect(leaderUnsettled(protocolError('Not authorized to access topics: [Topic authorization failed.]', 'TOPIC_AUTHORIZATION_FAILED', false))).toBe(false);
    expect(leaderUnsettled(new Error('Connection error: connect ECONNREFUSED 127.0.0.1:1'))).toBe(false);
    // A missing topic: kafkajs already retried it with fresh metadata; it must reach the caller.
    expect(leaderUnsettled(protocolError('This server does not host this topic-partition', 'UNKNOWN_TOPIC_OR_PARTITION', true))).toBe(false);
    expect(leaderUnsettled(null)).toBe(false);
  });

  it('throws anything else at once, and the unsettled answer itself once the time allowed is over', async () => {
    const denied = scripted([
      () => {
        throw protocolError('Not authorized to access topics: [Topic authorization failed.]', 'TOPIC_AUTHORIZATION_FAILED', false);
      },
      () => ends,
    ]);
    await expect(fetchTopicEnds(denied.kafka, 't')).rejects.toThrow('Not authorized');
    expect(denied.seen).toEqual({ admins: 1, connects: 1, disconnects: 1 });

    const never = scripted(Array.from({ length: 100 }, () => () => {
      throw notLeader();
    }));
    await expect(fetchTopicEnds(never.kafka, 't', { timeoutMs: 250 })).rejects.toThrow('not the leader');
    expect(never.seen.admins).toBeGreaterThan(1);
    expect(never.seen.disconnects).toBe(never.seen.admins);
  });
});

describe('fetchTopicEnds on the real broker', () => {
  const kafka = new Kafka({ clientId: 'palisade-offsets-test', brokers: BROKERS, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  const topic = `palisade-test-offsets-${randomUUID().slice(0, 8)}`;
  beforeAll(async () => {
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }], waitForLeaders: false });
  });
  afterAll(async () => {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  });

  it('reads the ends of a topic created a moment ago, and of the records written to it', async () => {
    expect(await fetchTopicEnds(kafka, topic)).toEqual([
      { partition: 0, low: 0n, high: 0n },
      { partition: 1, low: 0n, high: 0n },
    ]);
    const producer = kafka.producer();
    await producer.connect();
    try {
      await producer.send({ topic, acks: -1, messages: [0, 1, 2].map((i) => ({ partition: 1, value: String(i) })) });
    } finally {
      await producer.disconnect();
    }
    const after = await fetchTopicEnds(kafka, topic);
    expect(after.find((p) => p.partition === 1)).toEqual({ partition: 1, low: 0n, high: 3n });
    expect(after.find((p) => p.partition === 0)).toEqual({ partition: 0, low: 0n, high: 0n });
  });
});
