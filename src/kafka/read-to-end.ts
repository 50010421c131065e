/**
 * Reads a topic from its start up to the end offsets it has when the read
 * begins: for the one-shot readers (the detector's state restore,
 * `palisade blocklist list`). kafkajs has no manual partition assignment, so
 * a short-lived consumer in a group of its own reads, then leaves, and its
 * group is deleted.
 *
 * A consumer that crashes for good (kafkajs will not restart it) fails the
 * read with that error at once; a read that does not reach the ends within
 * `timeoutMs` resolves with `complete: false`, and the caller decides whether
 * part of the topic is good enough.
 */
import type { Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import { fatalCrash, retryUntilStopped } from './client.ts';
import { fetchTopicEnds } from './offsets.ts';

export interface ReadToEndOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  /** The one-shot consumer group; deleted afterwards. */
  readonly groupId: string;
  /** Every record below the end, in offset order per partition. */
  readonly onMessage: (message: KafkaMessage, partition: number) => void;
  /** Which partitions to read; default all. */
  readonly partitions?: (partition: number) => boolean;
  /** Stop waiting after this long, ms. Default 30000. */
  readonly timeoutMs?: number;
  /** Called about every second while reading, to keep the caller's own group membership alive. */
  readonly heartbeat?: () => Promise<void>;
  /** Largest fetch per partition, bytes. Default kafkajs's (1 MiB). */
  readonly maxBytesPerPartition?: number;
  readonly logger?: Logger;
}

export interface ReadToEndResult {
  /** False when the time ran out first. */
  readonly complete: boolean;
  /** Partitions not read to their end (empty when complete). */
  readonly pending: readonly number[];
}

export async function readToEnd(o: ReadToEndOptions): Promise<ReadToEndResult> {
  const targets = new Map<number, bigint>();
  const wanted = o.partitions ?? (() => true);
  for (const p of await fetchTopicEnds(o.kafka, o.topic, o.logger ? { logger: o.logger } : {})) if (wanted(p.partition) && p.high > p.low) targets.set(p.partition, p.high);
  if (targets.size === 0) return { complete: true, pending: [] };

  let stopping = false;
  const consumer = o.kafka.consumer({
    groupId: o.groupId,
    maxWaitTimeInMs: 100,
    allowAutoTopicCreation: false,
    ...(o.maxBytesPerPartition ? { maxBytesPerPartition: o.maxBytesPerPartition } : {}),
    retry: retryUntilStopped(() => stopping),
  });
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const crashed = fatalCrash(consumer);
  const beat = o.heartbeat ? setInterval(() => void o.heartbeat?.().catch(() => undefined), 1000) : null;
  let timer: NodeJS.Timeout | undefined;
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [o.topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const p = batch.partition;
        const target = targets.get(p);
        if (target === undefined) return;
        for (const m of batch.messages) {
          if (BigInt(m.offset) >= target) break;
          o.onMessage(m, p);
        }
        if (BigInt(batch.lastOffset()) + 1n >= target) targets.delete(p);
        if (targets.size === 0) done();
      },
    });
    const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), o.timeoutMs ?? 30_000)));
    const outcome = await Promise.race([finished.then(() => 'ok' as const), timeout, crashed]);
    return outcome === 'ok' ? { complete: true, pending: [] } : { complete: false, pending: [...targets.keys()] };
  } finally {
    clearTimeout(timer);
    if (beat) clearInterval(beat);
    stopping = true;
    await consumer.disconnect().catch(() => undefined);
    const admin = o.kafka.admin();
    await admin
      .connect()
      .then(() => admin.deleteGroups([o.groupId]))
      .catch(() => undefined)
      .finally(() => admin.disconnect().catch(() => undefined));
  }
}
