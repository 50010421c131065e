/**
 * The Kafka decision sink. write() (after the response is sent) encodes the
 * record and appends the message to a bounded in-memory queue; one background
 * loop publishes, in this order:
 *
 *   1. the spool (oldest events, left by an outage or by an earlier process),
 *   2. the memory queue, in batches of `batchSize`, or sooner once the oldest
 *      queued record has waited `lingerMs`.
 *
 * Per-key order holds because everything is published in acceptance order:
 * the spool only ever holds events older than the memory queue (spills take
 * the queue's head), a batch that fails is written *before* the spool
 * (prepend), and nothing from memory is sent while the spool is not empty.
 *
 * Broker unreachable: the failing batch goes to the spool, the sink counts
 * as down, and every linger tick spills the queue to the spool (so a crash
 * loses little) until a retry (backoff up to `retryMaxMs`) gets through; then
 * the spool is replayed before anything newer. Broker slow: when the queue
 * reaches half its capacity it spills too. Only a full spool (or a full queue
 * while the disk write is still running) drops events: each is counted in
 * stats().dropped and logged. Without a spool the failing batch stays at the
 * head of the queue and overflow is dropped.
 *
 * close(): publishes for up to `closeTimeoutMs`, then spools what is left
 * (including a batch still in flight: it may be published twice).
 *
 * Encoding happens in write(), one event at a time, not in the loop: a batch
 * of 500 encoded at once held the event loop for milliseconds, and every
 * request arriving meanwhile waited (the sidecar's p99).
 */
import type { Logger } from 'pino';
import { decisionEncoder, type EventDetail } from '../../encode.ts';
import type { DecisionRecord } from '../../record.ts';
import type { DecisionSink, SinkStats } from '../../sink.ts';
import { BoundedQueue } from './buffer.ts';
import { partitionKey } from './key.ts';
import type { Publisher } from './publisher.ts';
import type { Spool, SpoolEntry } from './spool.ts';

/** The one SinkStats, with the fields a Kafka sink always has (spool bytes are 0 without a spool). */
export type KafkaSinkStats = Required<Omit<SinkStats, 'streams'>> & Pick<SinkStats, 'streams'> & {
  /** False while the broker is unreachable (events go to the spool). */
  readonly connected: boolean;
};

export interface KafkaSinkCoreOptions {
  readonly publisher: Publisher;
  readonly spool: Spool | null;
  readonly logger: Logger;
  readonly batchSize: number;
  readonly lingerMs: number;
  readonly bufferEvents: number;
  /** Longest close() tries to publish before it spools the rest, ms. Default 5000. */
  readonly closeTimeoutMs?: number;
  /** First retry delay after a failure, ms (doubles up to retryMaxMs). Default 200. */
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
  readonly encode?: (r: DecisionRecord) => unknown;
  /** Detail level of the events (PALISADE_EVENT_DETAIL); default "standard". Ignored with `encode`. */
  readonly detail?: EventDetail;
  /** Called after each change of the stats (published, spilled, dropped); must be cheap. */
  readonly onStats?: (s: KafkaSinkStats) => void;
}

export interface KafkaSink extends DecisionSink {
  stats(): KafkaSinkStats;
}

/** How often "dropped" is logged at most, ms (with the count since the last line). */
const DROP_LOG_MS = 5000;

export function createKafkaSinkCore(o: KafkaSinkCoreOptions): KafkaSink {
  const { publisher, spool, logger, batchSize, lingerMs } = o;
  const custom = o.encode;
  const serialize = custom ? (r: DecisionRecord) => JSON.stringify(custom(r)) : decisionEncoder(o.detail ?? 'standard');
  const closeTimeoutMs = o.closeTimeoutMs ?? 5000;
  const retryMinMs = o.retryMinMs ?? 200;
  const retryMaxMs = o.retryMaxMs ?? 5000;
  const queue = new BoundedQueue<SpoolEntry>(o.bufferEvents);
  const spillAt = Math.max(1, Math.floor(o.bufferEvents / 2));

  let accepted = 0;
  let delivered = 0;
  let dropped = 0;
  /** Records taken from the queue and not yet published or spooled (a batch in flight, a spill being written). */
  let detached = 0;
  let spilling: Promise<void> | null = null;
  /** The batch taken from the queue that is being published, if any. */
  let inflight: { readonly entries: readonly SpoolEntry[]; abandoned: boolean } | null = null;

  let down = false;
  let retryDelay = retryMinMs;
  let retryAt = 0;
  let oldestAt = 0;
  let closing = false;
  let closed = false;
  let flushes = 0;
  let stopped = false;

  let dropsUnlogged = 0;
  let dropLoggedAt = 0;
  function drop(n: number, reason: string): void {
    if (n <= 0) return;
    dropped += n;
    dropsUnlogged += n;
    const now = Date.now();
    if (now - dropLoggedAt >= DROP_LOG_MS) {
      logger.error({ dropped: dropsUnlogged, total: dropped, reason }, 'decision events dropped');
      dropsUnlogged = 0;
      dropLoggedAt = now;
    }
  }

  function stats(): KafkaSinkStats {
    return {
      accepted,
      delivered,
      dropped,
      buffered: queue.length + detached,
      spoolBytes: spool?.diskBytes() ?? 0,
      spoolLimitBytes: spool?.limitBytes ?? 0,
      capacity: queue.capacity,
      connected: !down,
    };
  }
  const changed = o.onStats ? () => o.onStats!(stats()) : () => undefined;

  // ---- wake-up: the loop sleeps until a batch is full, the linger or a retry is due, or close/flush ----
  let wakeResolve: (() => void) | null = null;
  let wakeTimer: NodeJS.Timeout | null = null;
  function wake(): void {
    if (wakeTimer) {
      clearTimeout(wakeTimer);
      wakeTimer = null;
    }
    const r = wakeResolve;
    wakeResolve = null;
    r?.();
  }
  function sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      wakeResolve = resolve;
      if (Number.isFinite(ms)) wakeTimer = setTimeout(wake, Math.max(0, ms));
    });
  }

  function toEntry(r: DecisionRecord): SpoolEntry | null {
    try {
      return { id: r.id, key: partitionKey(r), value: serialize(r) };
    } catch (err) {
      // A record the encoder cannot handle must not stop the stream behind it.
      logger.error({ err: (err as Error).message, eventId: r.id }, 'decision event could not be encoded');
      drop(1, 'encode');
      return null;
    }
  }

  /** Moves the queue's head (up to `n` events) to the spool, after any spill already running. */
  function spill(s: Spool, n: number): Promise<void> {
    const entries = queue.take(n);
    detached += entries.length;
    const previous = spilling ?? Promise.resolve();
    const p = previous.then(async () => {
      try {
        drop(await s.append(entries), 'spool full');
      } catch (err) {
        logger.error({ err: (err as Error).message }, 'spool write failed');
        drop(entries.length, 'spool write failed');
      } finally {
        detached -= entries.length;
        changed();
      }
    });
    spilling = p;
    void p.finally(() => {
      if (spilling === p) spilling = null;
      wake();
    });
    return p;
  }

  function markDown(err: unknown): void {
    // Unreachable, too slow, or refusing (e.g. a missing topic or ACL): the same remedy, the spool.
    if (!down) logger.warn({ err: (err as Error).message }, 'kafka publish failed: decision events go to the spool until it succeeds');
    down = true;
    retryAt = Date.now() + retryDelay;
    retryDelay = Math.min(retryMaxMs, retryDelay * 2);
  }
  function markUp(): void {
    if (down) logger.info({ spoolBytes: spool?.diskBytes() ?? 0 }, 'kafka reachable again: replaying the spool');
    down = false;
    retryDelay = retryMinMs;
  }

  /** Publishes the spool's next batch; false when there was nothing to read. */
  async function publishFromSpool(s: Spool): Promise<boolean> {
    const batch = await s.read(batchSize);
    if (!batch) return false;
    drop(batch.corrupt, 'spool line corrupt');
    try {
      const { rejected } = await publisher.publish(batch.entries);
      drop(rejected, 'refused by broker');
      delivered += batch.entries.length - rejected;
      await s.ack(batch);
      markUp();
    } catch (err) {
      markDown(err);
    }
    changed();
    return true;
  }

  async function publishFromQueue(): Promise<void> {
    const entries = queue.take(batchSize);
    oldestAt = queue.length > 0 ? Date.now() : 0;
    detached += entries.length;
    const flight = { entries, abandoned: false };
    inflight = flight;
    try {
      const { rejected } = await publisher.publish(flight.entries);
      if (flight.abandoned) return;
      drop(rejected, 'refused by broker');
      delivered += flight.entries.length - rejected;
      markUp();
    } catch (err) {
      if (flight.abandoned) return;
      markDown(err);
      if (spool) {
        // Older than anything spooled meanwhile: goes first.
        try {
          drop(await spool.prepend(flight.entries), 'spool full');
        } catch (e) {
          logger.error({ err: (e as Error).message }, 'spool write failed');
          drop(flight.entries.length, 'spool write failed');
        }
      } else {
        queue.unshift(entries);
        if (queue.length > 0) oldestAt ||= Date.now();
      }
    } finally {
      if (!flight.abandoned) detached -= entries.length;
      if (inflight === flight) inflight = null;
    }
    changed();
  }

  async function loop(): Promise<void> {
    while (!stopped) {
      const now = Date.now();
      if (spilling) {
        // The spool is being written: nothing from memory may overtake it.
        await spilling;
        continue;
      }
      if (down && now < retryAt) {
        // Outage: keep memory small and the events durable.
        if (spool && queue.length > 0) {
          await spill(spool, queue.length);
          continue;
        }
        if (closing) return;
        await sleep(retryAt - now);
        continue;
      }
      // (A spool that reports pending bytes but yields nothing must not spin the loop.)
      if (spool?.hasPending() && (await publishFromSpool(spool))) continue;
      const due = queue.length > 0 && (queue.length >= batchSize || closing || flushes > 0 || now - oldestAt >= lingerMs);
      if (due) {
        await publishFromQueue();
        continue;
      }
      if (closing) return;
      await sleep(queue.length > 0 ? oldestAt + lingerMs - now : Infinity);
    }
  }

  const running = loop().catch((err: unknown) => {
    logger.fatal({ err }, 'kafka sink loop failed');
  });

  /** Waits until memory is empty (published, spooled or dropped), the deadline passes, or nothing can drain it. */
  async function drainMemory(deadline: number): Promise<void> {
    while (queue.length + detached > 0 || spilling) {
      if (Date.now() >= deadline || (down && !spool)) return;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  return {
    write(record) {
      accepted++;
      if (closed) {
        drop(1, 'sink closed');
        return;
      }
      if (queue.length >= queue.capacity) {
        drop(1, spool ? 'memory full while spooling' : 'memory full (no spool)');
        return;
      }
      const entry = toEntry(record);
      if (entry === null) return;
      queue.push(entry);
      const n = queue.length;
      if (n === 1) {
        oldestAt = Date.now();
        wake();
      } else if (n === batchSize) wake();
      if (spool && n >= spillAt && !spilling) void spill(spool, n);
    },
    async flush() {
      flushes++;
      wake();
      try {
        await drainMemory(Date.now() + closeTimeoutMs);
      } finally {
        flushes--;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      closing = true;
      wake();
      const deadline = Date.now() + closeTimeoutMs;
      await drainMemory(deadline);
      // Replay what is spooled while there is time; the rest waits on disk for the next process.
      while (spool?.hasPending() && !down && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      stopped = true;
      wake();
      // A batch still in flight heads the order: spool it first. If the broker did take it, the
      // next process publishes it again (a duplicate that consumers drop by event id).
      const flight = inflight;
      if (flight && !flight.abandoned) {
        flight.abandoned = true;
        detached -= flight.entries.length;
        if (spool) drop(await spool.prepend(flight.entries), 'spool full');
        else drop(flight.entries.length, 'kafka unreachable at shutdown (no spool)');
      }
      if (spilling) await spilling;
      const leftover = queue.take(queue.length);
      if (spool) drop(await spool.append(leftover), 'spool full');
      else drop(leftover.length, 'kafka unreachable at shutdown (no spool)');
      // The loop ends after its current step; a send still waiting on the broker is not awaited.
      await Promise.race([Promise.all([running, publisher.close()]), new Promise((r) => setTimeout(r, 2000).unref())]);
      if (spool) await spool.close();
      changed();
      if (dropsUnlogged > 0) logger.error({ dropped: dropsUnlogged, total: dropped }, 'decision events dropped');
      logger.info({ accepted, delivered, dropped, spoolBytes: spool?.diskBytes() ?? 0 }, 'kafka decision sink closed');
    },
    stats,
  };
}
