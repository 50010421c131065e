/**
 * The sidecar side of the feedback loop: reads the compacted block-list topic
 * from its start (which rebuilds the current list) and then applies each new
 * record as it arrives to this process's block-list store (store.ts): a block
 * adds or replaces an entry, a tombstone removes it. Records whose expiry has
 * passed are skipped; live entries expire in the store by themselves.
 *
 * Every process must see every record, so each one consumes in a consumer
 * group of its own (kafkajs has no manual assignment) and never commits:
 * the group has no offsets and disappears when the process leaves it.
 * Kafka being away does not stop the sidecar: the feed retries in the
 * background and the entries it already applied stay in force.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { restartAfterFatalCrash, retryUntilStopped } from '../kafka/client.ts';
import { fetchTopicEnds } from '../kafka/offsets.ts';
import { backoffMs } from '../util/backoff.ts';
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
  /** Longest a fetch waits on the broker for new records, ms: the propagation latency. Default 100. */
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

const RETRY_MAX_MS = 10_000;

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
  let closed = false;
  // A holder, not a let: it is set inside async code that TypeScript's narrowing does not follow.
  const held: { consumer: Consumer | null } = { consumer: null };
  let markReady!: () => void;
  const ready = new Promise<void>((resolve) => {
    markReady = () => {
      if (isReady) return;
      isReady = true;
      log.info({ blocks, unblocks, skippedExpired, entries: o.store?.size() ?? null }, 'block list rebuilt from the topic');
      resolve();
    };
  });
  /** Offset each partition must reach before the list counts as rebuilt. */
  const pending = new Map<number, bigint>();

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

  async function run(): Promise<void> {
    const ends = await fetchTopicEnds(o.kafka, o.topic, { logger: log });
    if (closed) return;
    pending.clear();
    for (const p of ends) if (p.high > p.low) pending.set(p.partition, p.high);
    if (pending.size === 0) markReady();
    const c = o.kafka.consumer({
      groupId,
      maxWaitTimeInMs: o.maxWaitMs ?? 100,
      allowAutoTopicCreation: false,
      sessionTimeout: 30_000,
      heartbeatInterval: 3_000,
      retry: retryUntilStopped(() => closed),
    });
    held.consumer = c;
    restartAfterFatalCrash(c, () => follow(c), { stopped: () => closed, logger: log, what: 'block-list feed' });
    await follow(c);
  }

  /** Connects, subscribes and runs the consumer, from the start of the topic (again after a crash: applying a record twice is harmless). */
  async function follow(c: Consumer): Promise<void> {
    await c.connect();
    if (closed) {
      await c.disconnect();
      return;
    }
    await c.subscribe({ topics: [o.topic], fromBeginning: true });
    if (closed) {
      await c.disconnect();
      return;
    }
    await c.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const msg of batch.messages) {
          const d = decodeBlockMessage({ key: msg.key, value: msg.value, headers: msg.headers as Record<string, unknown>, timestamp: msg.timestamp });
          apply(d);
          try {
            o.onMessage?.(d);
          } catch (err) {
            log.error({ err }, 'block-list listener failed');
          }
        }
        // The position applied so far (the topic has one partition): what the fleet status reports.
        position = BigInt(batch.lastOffset()) + 1n;
        positionAt = Date.now();
        if (!isReady) {
          const target = pending.get(batch.partition);
          if (target !== undefined && BigInt(batch.lastOffset()) + 1n >= target) pending.delete(batch.partition);
          if (pending.size === 0) markReady();
        }
      },
    });
    // kafkajs's stop() does nothing while its consumer is still joining (it is not "running" yet),
    // and the join then goes on to run it: a close() that gave up waiting for this start and
    // disconnected meanwhile is repeated now that stopping works.
    if (closed) await c.disconnect();
  }

  /** Ends the wait between two start attempts early (on close). */
  let wake: (() => void) | null = null;
  // Kafka may be away at start: retry in the background, never fail the sidecar. Settles once
  // the consumer runs, or the feed is closed.
  const starting = (async () => {
    for (let attempt = 0; !closed; attempt++) {
      try {
        await run();
        return;
      } catch (err) {
        const c = held.consumer;
        held.consumer = null;
        await c?.disconnect().catch(() => undefined);
        if (closed) return;
        const wait = backoffMs(attempt, 250, RETRY_MAX_MS);
        log.warn({ err: (err as Error).message, retryInMs: wait }, 'block-list feed cannot start; retrying');
        await new Promise<void>((r) => {
          const t = setTimeout(r, wait);
          t.unref();
          wake = () => {
            clearTimeout(t);
            r();
          };
        });
        wake = null;
      }
    }
  })();

  return {
    ready,
    stats: () => ({ blocks, unblocks, skippedExpired, invalid, ready: isReady, position: position === null ? null : String(position), positionAt }),
    async close() {
      closed = true;
      wake?.();
      // A start in progress is let finish first: it checks `closed` between its steps and stops
      // itself. kafkajs ignores a stop while its consumer joins the group, and the join then
      // runs it (most likely what kept a sidecar stopped 0.1 s after its start from exiting by
      // itself in CI, with two broker connections open).
      await withinMs(starting, 3000);
      const c = held.consumer;
      held.consumer = null;
      // kafkajs can hang in disconnect() while its consumer is restarting after a
      // broker error; a shutdown must not wait on it past a few seconds.
      await withinMs(c?.disconnect().catch(() => undefined), 3000);
    },
  };
}

/** Waits for `p`, but not longer than `ms`. */
async function withinMs(p: Promise<unknown> | undefined, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
