/**
 * Reads the compacted detector-state topic back: the latest checkpoint of
 * every client on the given partitions (the state topic is co-partitioned
 * with the decisions topic: a client's checkpoint sits on the partition its
 * decisions arrive on) and the latest population snapshot.
 *
 * kafkajs has no manual partition assignment, so a short-lived consumer in a
 * group of its own reads the topic from the start up to the end offsets
 * taken before it began, then leaves and its group is deleted.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { fatalCrash, retryUntilStopped } from '../../src/kafka/client.ts';
import { fetchTopicEnds } from '../../src/kafka/offsets.ts';

/** Key of the population snapshot (not a client key: clients are IPs, SPIFFE IDs or subjects). */
export const POPULATION_KEY = '\u0000population';

export interface RestoredState {
  /** Client key -> serialized state, per partition. */
  readonly clients: Map<number, Map<string, Buffer>>;
  readonly population: Buffer | null;
  readonly records: number;
}

export interface RestoreOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  readonly partitions: readonly number[];
  readonly groupPrefix: string;
  readonly logger: Logger;
  /** Called about every second while reading, to keep the caller's group membership alive. */
  readonly heartbeat?: () => Promise<void>;
  /** Give up waiting after this long and use what was read, ms. Default 30000. */
  readonly timeoutMs?: number;
}

export async function readState(o: RestoreOptions): Promise<RestoredState> {
  const wanted = new Set(o.partitions);
  const clients = new Map<number, Map<string, Buffer>>();
  for (const p of wanted) clients.set(p, new Map());
  let population: { buf: Buffer; ts: number } | null = null;
  let records = 0;

  const targets = new Map<number, bigint>();
  // Partition 0 also holds the population snapshot: read it even when not wanted.
  for (const p of await fetchTopicEnds(o.kafka, o.topic, { logger: o.logger })) if ((wanted.has(p.partition) || p.partition === 0) && p.high > p.low) targets.set(p.partition, p.high);
  if (targets.size === 0) return { clients, population: null, records: 0 };

  const groupId = `${o.groupPrefix}.restore.${randomUUID()}`;
  let stopping = false;
  const consumer = o.kafka.consumer({ groupId, maxWaitTimeInMs: 100, allowAutoTopicCreation: false, maxBytesPerPartition: 8 * 1024 * 1024, retry: retryUntilStopped(() => stopping) });
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const beat = o.heartbeat ? setInterval(() => void o.heartbeat?.().catch(() => undefined), 1000) : null;
  try {
    const crashed = fatalCrash(consumer);
    await consumer.connect();
    await consumer.subscribe({ topics: [o.topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const p = batch.partition;
        const target = targets.get(p);
        if (target === undefined) return;
        const own = clients.get(p);
        for (const m of batch.messages) {
          if (BigInt(m.offset) >= target) break;
          records++;
          const key = m.key?.toString('utf8') ?? '';
          if (key === POPULATION_KEY) {
            const ts = Number(m.timestamp);
            if (m.value && (!population || ts >= population.ts)) population = { buf: m.value, ts };
            continue;
          }
          if (!own) continue;
          if (m.value === null || m.value.length === 0) own.delete(key);
          else own.set(key, m.value);
        }
        if (BigInt(batch.lastOffset()) + 1n >= target) targets.delete(p);
        if (targets.size === 0) done();
      },
    });
    const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), o.timeoutMs ?? 30_000).unref());
    // A consumer that crashed for good fails the restore (the caller retries it) rather than
    // returning what was read before it.
    if ((await Promise.race([finished.then(() => 'ok' as const), timeout, crashed])) === 'timeout') {
      o.logger.warn({ topic: o.topic, partitions: [...targets.keys()] }, 'detector state restore timed out; continuing with what was read');
    }
  } finally {
    if (beat) clearInterval(beat);
    stopping = true;
    await consumer.disconnect().catch(() => undefined);
    const admin2 = o.kafka.admin();
    await admin2
      .connect()
      .then(() => admin2.deleteGroups([groupId]))
      .catch(() => undefined)
      .finally(() => admin2.disconnect().catch(() => undefined));
  }
  const pop = population as { buf: Buffer; ts: number } | null;
  return { clients, population: pop ? pop.buf : null, records };
}
