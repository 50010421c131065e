/**
 * The sidecar side of the feedback loop: reads the compacted block-list topic
 * from its start (which rebuilds the current list) and then applies each new
 * record as it arrives to this process's block-list store (store.ts): a block
 * adds or replaces an entry, a tombstone removes it. Records whose expiry has
 * passed are skipped; live entries expire in the store by themselves.
 *
 * The following itself (a consumer group per process, retries while Kafka is
 * away, a bounded close) is src/kafka/compacted-follower.ts, shared with the
 * quota feed.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { followCompactedTopic } from '../kafka/compacted-follower.ts';
import { BlockEntryError } from './entry.ts';
import { decodeBlockMessage, type DecodedBlockMessage } from './kafka-record.ts';
import type { BlockListStore } from './store.ts';

export interface BlockListFeedOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  /** Where entries go; null when the caller only wants onMessage (the detector's view). */
  readonly store: BlockListStore | null;
  readonly logger: Logger;
  /** Default: "palisade-blocklist-<host>-<uuid>" (one group per process). */
  readonly groupId?: string;
  /** Longest a fetch waits on the broker while there is nothing new, ms (a new record is fetched at once). Default 500 (src/kafka/compacted-follower.ts). */
  readonly maxWaitMs?: number;
  /** Every decoded record, after it was applied to the store. */
  readonly onMessage?: (m: DecodedBlockMessage) => void;
  readonly now?: () => number;
}

export interface BlockListFeedStats {
  readonly blocks: number;
  readonly unblocks: number;
  readonly skippedExpired: number;
  readonly invalid: number;
  /** True once everything on the topic at start has been applied. */
  readonly ready: boolean;
  /** Offset of the next record to apply (every record below it is applied), decimal; null before the first. */
  readonly position: string | null;
  /** When position last moved, epoch ms (0 before the first record). */
  readonly positionAt: number;
}

export interface BlockListFeed {
  /** Resolves once the records present at start are applied (the list is rebuilt). */
  readonly ready: Promise<void>;
  stats(): BlockListFeedStats;
  close(): Promise<void>;
}

export function startBlockListFeed(o: BlockListFeedOptions): BlockListFeed {
  const log = o.logger.child({ part: 'blocklist-feed', topic: o.topic });
  const now = o.now ?? Date.now;
  const groupId = o.groupId ?? `palisade-blocklist-${hostname()}-${randomUUID()}`;
  let blocks = 0;
  let unblocks = 0;
  let skippedExpired = 0;
  let invalid = 0;
  let isReady = false;
  let position: bigint | null = null;
  let positionAt = 0;
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => {
    markReady = () => {
      if (isReady) return;
      isReady = true;
      log.info({ blocks, unblocks, skippedExpired, entries: o.store?.size() ?? null }, 'block list rebuilt from the topic');
      resolve();
    };
  });
  function apply(m: DecodedBlockMessage): void {
    const store = o.store;
    if (m.type === 'invalid') {
      invalid++;
      log.warn({ key: m.key.slice(0, 200), reason: m.reason }, 'invalid block-list record skipped');
      return;
    }
    if (m.type === 'unblock') {
      unblocks++;
      store?.remove(m.unblock.kind, m.unblock.value);
      return;
    }
    const r = m.record;
    if (r.expiresAt !== null && r.expiresAt <= now()) {
      skippedExpired++;
      // A newer, expired record supersedes an older live one under the same key.
      store?.remove(r.kind, r.value);
      return;
    }
    blocks++;
    if (!store) return;
    try {
      store.add({ kind: r.kind, value: r.value, reason: r.reason, source: r.source, expiresAt: r.expiresAt, rule: r.rule });
    } catch (err) {
      if (!(err instanceof BlockEntryError)) throw err;
      invalid++;
      log.warn({ key: m.key.slice(0, 200), err: err.message }, 'block-list record refused by the store');
    }
  }

  const follower = followCompactedTopic({
    kafka: o.kafka,
    topic: o.topic,
    groupId,
    logger: log,
    what: 'block-list feed',
    ...(o.maxWaitMs !== undefined ? { maxWaitMs: o.maxWaitMs } : {}),
    onMessage(msg) {
      const d = decodeBlockMessage({ key: msg.key, value: msg.value, headers: msg.headers as Record<string, unknown>, timestamp: msg.timestamp });
      apply(d);
      try {
        o.onMessage?.(d);
      } catch (err) {
        log.error({ err }, 'block-list listener failed');
      }
    },
    // The position applied so far (the topic has one partition): what the fleet status reports.
    onBatchApplied(next) {
      position = next;
      positionAt = Date.now();
    },
    onReady: markReady,
  });

  return {
    ready,
    stats: () => ({ blocks, unblocks, skippedExpired, invalid, ready: isReady, position: position === null ? null : String(position), positionAt }),
    close: () => follower.close(),
  };
}
