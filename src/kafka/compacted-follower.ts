/**
 * Follows a compacted topic from its start in every process: reading it from
 * the beginning rebuilds the current state (the latest record per key), then
 * each new record is handed over as it arrives. Shared by the sidecar's
 * block-list feed and its quota feed.
 *
 * Every process must see every record, so each one consumes in a consumer
 * group of its own (kafkajs has no manual assignment) and never commits:
 * the group has no offsets and disappears when the process leaves it.
 * Kafka being away does not stop the process: the follower retries in the
 * background and what was applied stays in force.
 */
import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import { backoffMs } from '../util/backoff.ts';
import { restartAfterFatalCrash, retryUntilStopped } from './client.ts';
import { fetchTopicEnds } from './offsets.ts';

export interface CompactedFollowerOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  readonly groupId: string;
  readonly logger: Logger;
  /** What is followed, in log lines ("block-list feed"). */
  readonly what: string;
  /**
   * Longest a fetch waits on the broker while there is nothing new, ms. Not the propagation
   * latency: a fetch asks for at least one byte, so the broker answers as soon as a record
   * arrives. It is how often an idle follower asks again, and how long close() may wait for
   * the fetch in flight. Default 500 (DEFAULT_MAX_WAIT_MS).
   */
  readonly maxWaitMs?: number;
  /** Every record, in order per partition (may be called twice for one record after a crash: apply idempotently). */
  onMessage(msg: KafkaMessage): void;
  /** After each batch: the offset of the next record of its partition (every record below it was handed over). */
  onBatchApplied?(nextOffset: bigint, partition: number): void;
  /** Once everything on the topic at start was handed over. */
  onReady(): void;
}

export interface CompactedFollower {
  isReady(): boolean;
  close(): Promise<void>;
}

const RETRY_MAX_MS = 10_000;

/**
 * Every empty fetch costs the thread that serves requests a kafkajs request and response (and
 * the broker a fetch): with 100 ms, an idle sidecar with the Kafka sink spent 14-15 ms of CPU
 * per second on its request thread, with 500 ms 8-11 (the NDJSON sidecar, with no feed: 7);
 * that is ~2.5 µs per request less at 2,000 req/s. A block or a quota record still arrives at
 * once (the fetch returns with it); a shutdown may wait up to this long for the fetch in flight.
 */
const DEFAULT_MAX_WAIT_MS = 500;

export function followCompactedTopic(o: CompactedFollowerOptions): CompactedFollower {
  const log = o.logger;
  let isReady = false;
  let closed = false;
  // A holder, not a let: it is set inside async code that TypeScript's narrowing does not follow.
  const held: { consumer: Consumer | null } = { consumer: null };
  const markReady = () => {
    if (isReady) return;
    isReady = true;
    o.onReady();
  };
  /** Offset each partition must reach before the state counts as rebuilt. */
  const pending = new Map<number, bigint>();

  async function run(): Promise<void> {
    const ends = await fetchTopicEnds(o.kafka, o.topic, { logger: log });
    if (closed) return;
    pending.clear();
    for (const p of ends) if (p.high > p.low) pending.set(p.partition, p.high);
    if (pending.size === 0) markReady();
    const c = o.kafka.consumer({
      groupId: o.groupId,
      maxWaitTimeInMs: o.maxWaitMs ?? DEFAULT_MAX_WAIT_MS,
      allowAutoTopicCreation: false,
      sessionTimeout: 30_000,
      heartbeatInterval: 3_000,
      retry: retryUntilStopped(() => closed),
    });
    held.consumer = c;
    restartAfterFatalCrash(c, () => follow(c), { stopped: () => closed, logger: log, what: o.what });
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
        for (const msg of batch.messages) o.onMessage(msg);
        o.onBatchApplied?.(BigInt(batch.lastOffset()) + 1n, batch.partition);
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
  // Kafka may be away at start: retry in the background, never fail the process. Settles once
  // the consumer runs, or the follower is closed.
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
        log.warn({ err: (err as Error).message, retryInMs: wait }, `${o.what} cannot start; retrying`);
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
    isReady: () => isReady,
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
