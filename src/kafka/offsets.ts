/**
 * The first and next offset of every partition of a topic, for the readers
 * that read a topic "up to its end as it is now" (the block-list feed, the
 * detector's state restore, `palisade blocklist list`, `palisade alerts tail
 * --exit-at-end`).
 *
 * Why not kafkajs's `admin.fetchTopicOffsets` alone: it retries only
 * UNKNOWN_TOPIC_OR_PARTITION and gives up at once on "This server is not the
 * leader for that topic-partition" and LEADER_NOT_AVAILABLE, which a broker
 * answers for a while after it created a topic or moved a leader (a detector
 * failed to start on it in CI, on a loaded single-node broker). Those answers
 * are retried here, each time with a fresh admin client (fresh metadata, so a
 * moved leader is found), for up to `timeoutMs`; anything else is thrown as is.
 */
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { backoffMs } from '../util/backoff.ts';

export interface PartitionEnds {
  readonly partition: number;
  /** Offset of the first record still on the partition. */
  readonly low: bigint;
  /** Offset the next record will get (the end). */
  readonly high: bigint;
}

export interface TopicEndsOptions {
  /** Longest time to wait for every partition to have a settled leader, ms. Default 15000. */
  readonly timeoutMs?: number;
  /** Where a retry is logged (at debug) and giving up is not: the error is thrown. */
  readonly logger?: Logger;
}

/**
 * Broker answers that mean "leadership is not settled yet; ask again" (kafkajs error types).
 * Not UNKNOWN_TOPIC_OR_PARTITION: kafkajs retries that itself (with fresh metadata), and a topic
 * that does not exist must fail fast, so the caller's own retry loop logs it.
 */
const UNSETTLED = new Set(['NOT_LEADER_FOR_PARTITION', 'LEADER_NOT_AVAILABLE']);

/** True when the error (or what kafkajs wrapped in it after its own retries) is an unsettled-leader answer. */
export function leaderUnsettled(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === 'string' && UNSETTLED.has(type)) return true;
    e = (e as { originalError?: unknown; cause?: unknown }).originalError ?? (e as { cause?: unknown }).cause;
  }
  return false;
}

/** The ends of every partition of `topic`, in partition order. */
export async function fetchTopicEnds(kafka: Pick<Kafka, 'admin'>, topic: string, o: TopicEndsOptions = {}): Promise<PartitionEnds[]> {
  const end = Date.now() + (o.timeoutMs ?? 15_000);
  for (let attempt = 0; ; attempt++) {
    const admin = kafka.admin();
    try {
      await admin.connect();
      const offsets = await admin.fetchTopicOffsets(topic);
      return offsets.map((p) => ({ partition: p.partition, low: BigInt(p.low), high: BigInt(p.high) })).sort((a, b) => a.partition - b.partition);
    } catch (err) {
      if (!leaderUnsettled(err) || Date.now() >= end) throw err;
      o.logger?.debug({ topic, attempt, err: (err as Error).message }, 'partition leaders not settled; asking again');
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, backoffMs(attempt, 100, 1000)));
  }
}
