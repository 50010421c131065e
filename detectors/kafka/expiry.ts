/**
 * The expiry sweep: blocks whose expiry passed are tombstoned on the block-list topic, so the
 * compacted topic holds only what is in force (sidecars also drop expired entries by themselves).
 */
import type { Producer } from 'kafkajs';
import type { Logger } from 'pino';
import type { BlockKind } from '../../src/blocklist/entry.ts';
import { encodeUnblock } from '../../src/blocklist/kafka-record.ts';
import type { FeedbackPolicy } from '../feedback/policy.ts';
import type { DetectorMetrics } from '../metrics.ts';

export interface ExpirySweepOptions {
  readonly producer: Producer;
  readonly blocklistTopic: string;
  readonly feedback: FeedbackPolicy;
  readonly now: () => number;
  readonly metrics: DetectorMetrics | undefined;
  readonly log: Logger;
}

/** Returns the sweep; run it on a timer (config.kafka.expirySweepMs). */
export function createExpirySweep(o: ExpirySweepOptions): () => Promise<void> {
  const m = o.metrics;
  return async function expireBlocks(): Promise<void> {
    const now = o.now();
    const expired = o.feedback.takeExpired(now);
    m?.blocksActive.set(o.feedback.activeBlocks().size);
    if (expired.length === 0) return;
    const messages = expired.map((key) => {
      const i = key.indexOf(':');
      return encodeUnblock({ kind: key.slice(0, i) as BlockKind, value: key.slice(i + 1), source: 'expiry', at: now, actor: 'palisade-detector', reason: 'block expired' });
    });
    try {
      await o.producer.send({ topic: o.blocklistTopic, acks: -1, messages });
      m?.blocksExpired.inc(expired.length);
    } catch (err) {
      o.log.warn({ err: (err as Error).message }, 'expiry tombstones not published');
    }
  };
}
