/**
 * The sidecar side of the fleet-wide quotas: follows the compacted quota
 * topic (quota-record.ts) from its start, like the block list, into this
 * process's quota store. Records whose window has ended are skipped; live
 * entries end in the store by themselves. Nothing on the request path waits
 * for it: the rate-limit stage reads the store.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { followCompactedTopic } from '../kafka/compacted-follower.ts';
import { decodeQuotaMessage, type QuotaRecord } from './quota-record.ts';
import type { QuotaStore } from './quota-store.ts';

export interface QuotaFeedOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  readonly store: QuotaStore;
  readonly logger: Logger;
  /** Longest a fetch waits on the broker while there is nothing new, ms (a new record is fetched at once). Default 500 (src/kafka/compacted-follower.ts). */
  readonly maxWaitMs?: number;
  /** Every live record, after it was applied (tests measure the time to enforcement with it). */
  readonly onRecord?: (r: QuotaRecord) => void;
  readonly now?: () => number;
}

export interface QuotaFeed {
  readonly ready: Promise<void>;
  stats(): { readonly applied: number; readonly skippedEnded: number; readonly invalid: number; readonly ready: boolean };
  close(): Promise<void>;
}

export function startQuotaFeed(o: QuotaFeedOptions): QuotaFeed {
  const log = o.logger.child({ part: 'quota-feed', topic: o.topic });
  const now = o.now ?? Date.now;
  let applied = 0;
  let skippedEnded = 0;
  let invalid = 0;
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  const follower = followCompactedTopic({
    kafka: o.kafka,
    topic: o.topic,
    groupId: `palisade-quotas-${hostname()}-${randomUUID()}`,
    logger: log,
    what: 'quota feed',
    ...(o.maxWaitMs !== undefined ? { maxWaitMs: o.maxWaitMs } : {}),
    onMessage(msg) {
      const d = decodeQuotaMessage(msg);
      if (d.type === 'invalid') {
        invalid++;
        log.warn({ key: d.key, reason: d.reason }, 'invalid quota record skipped');
        return;
      }
      if (d.type === 'end') {
        o.store.remove(d.workload, d.rule, d.key);
        return;
      }
      const t = now();
      if (d.record.until <= t) {
        skippedEnded++;
        return;
      }
      applied++;
      o.store.apply(d.record, t);
      try {
        o.onRecord?.(d.record);
      } catch (err) {
        log.error({ err }, 'quota listener failed');
      }
    },
    onReady() {
      log.info({ applied, skippedEnded }, 'quota entries rebuilt from the topic');
      markReady();
    },
  });
  return { ready, stats: () => ({ applied, skippedEnded, invalid, ready: follower.isReady() }), close: () => follower.close() };
}
