/**
 * The quota aggregator: a component of the detector process (started by
 * detectors/kafka/service.ts) that counts the decisions' `quotas` facts per
 * (workload, rule, key), window and decisions partition (counts.ts), and
 * publishes "near" and "over" records to the compacted quota topic every
 * sidecar follows; after a window ends it writes tombstones so compaction
 * drops its keys.
 *
 * It consumes the decisions topic in a consumer group of its own
 * ("<detector group>.quotas"): the detector's instances share its partitions
 * the way they share the detector's. Counts are checkpointed the way the
 * detector's baselines are (detectors/kafka/checkpoints.ts): every
 * `checkpointMs` the counts changed since the last checkpoint go to the
 * compacted counts topic (count-record.ts), each valid at an offset, then the
 * consumer offsets they cover are committed. Every instance follows the
 * counts topic: for the partitions it does not own, the latest published
 * counts are added to its own (a key spread over instances is counted
 * whole); for partitions assigned to it (start, restart, rebalance), they are
 * restored before the partition's first event, and the events after them are
 * replayed from the committed offset. A partition the group has never
 * committed (first start) is read from `replayMs` ago instead. Without a
 * running aggregator nothing new is published and global quotas are not
 * enforced; local rate limits still are (docs/quotas.md).
 */
import { randomUUID } from 'node:crypto';
import type { Consumer, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { recordFromOcsf } from '../../src/decision/ocsf/read.ts';
import { restartAfterFatalCrash, retryUntilStopped } from '../../src/kafka/client.ts';
import { followCompactedTopic } from '../../src/kafka/compacted-follower.ts';
import { fetchTopicEnds } from '../../src/kafka/offsets.ts';
import { encodeQuota, quotaTopicKey, type QuotaRecord } from '../../src/ratelimit/quota-record.ts';
import { backoffMs } from '../../src/util/backoff.ts';
import { OwnedPartitions } from '../kafka/partitions.ts';
import { decodeQuotaCount, quotaCountKey, QUOTA_COUNT_VERSION } from './count-record.ts';
import { QuotaCounts } from './counts.ts';
import { singleFlight } from '../../src/util/single-flight.ts';

export interface QuotaAggregatorOptions {
  readonly kafka: Kafka;
  readonly producer: Producer;
  readonly decisionsTopic: string;
  readonly quotasTopic: string;
  /** The compacted topic of per-partition counts (the checkpoints every instance follows). */
  readonly countsTopic: string;
  readonly groupId: string;
  readonly logger: Logger;
  readonly now?: () => number;
  /** Set to 1 while the consumer runs, 0 when it stops or crashes (the alert PalisadeQuotaAggregatorDown). */
  readonly running?: { set(v: number): void };
  /** Checkpoints written, by result (ok | error). */
  readonly checkpoints?: { inc(labels: { result: string }): void };
  /** A partition the group never committed is read from this long ago, ms. Default 120000. */
  readonly replayMs?: number;
  /** How often changed counts are published and offsets committed, ms. Default 1000. */
  readonly checkpointMs?: number;
  /** Fair shares near the quota (default true). */
  readonly fairShare?: boolean;
  /** Longest wait for the counts topic to be read to its end before restoring a partition, ms. Default 30000. */
  readonly restoreTimeoutMs?: number;
}

export interface QuotaAggregator {
  /** Resolves when the consumer has joined its group and restored its partitions' counts. */
  readonly joined: Promise<void>;
  stats(): { readonly counted: number; readonly restored: number; readonly published: number; readonly keys: number; readonly over: number; readonly checkpoints: number; readonly assigned: readonly number[] };
  /** A key's total in its window as this instance sees it (its partitions live, the others as published). */
  total(workload: string, rule: string, key: string): number;
  /** Publishes changed counts and commits offsets now. */
  checkpoint(): Promise<void>;
  close(): Promise<void>;
}

const SWEEP_MS = 1000;
/**
 * A key near its quota was counted: checkpoint this soon instead of at the interval (other instances
 * add up our counts; near the quota a second of delay is a second of overshoot), ms.
 */
const HOT_CHECKPOINT_MS = 100;
/** Counts records per produce request. */
const CHUNK = 500;
const RESTORE_RETRY_MAX_MS = 10_000;

export function startQuotaAggregator(o: QuotaAggregatorOptions): QuotaAggregator {
  const log = o.logger.child({ part: 'quota-aggregator' });
  const now = o.now ?? Date.now;
  const parts = new OwnedPartitions();
  const checkpointMs = o.checkpointMs ?? 1000;
  const counts = new QuotaCounts({ ...(o.fairShare === undefined ? {} : { fairShare: o.fairShare }), remoteDelayMs: checkpointMs }, parts.owned);
  let published = 0;
  let checkpoints = 0;
  /** Set when close() starts: waits and retries give up. */
  let closing = false;
  const stopped = () => closing;

  async function publish(records: QuotaRecord[]): Promise<void> {
    if (records.length === 0) return;
    await o.producer.send({ topic: o.quotasTopic, messages: records.map((r) => encodeQuota(r)) });
    published += records.length;
    for (const r of records) log.info({ workload: r.workload, rule: r.rule, state: r.state, until: new Date(r.until).toISOString(), count: r.count, limit: r.limit, sidecars: r.sidecars, share: r.share }, r.state === 'over' ? 'key over global quota' : 'key near global quota');
  }
  const publishLater = (records: QuotaRecord[]) => void publish(records).catch((err: Error) => log.warn({ err: err.message }, 'quota records not written'));

  // Every instance's published counts (ours come back too): the partitions we do not own are added
  // to our totals; those assigned to us are restored from them.
  const position = new Map<number, bigint>();
  let invalidCounts = 0;
  const follower = followCompactedTopic({
    kafka: o.kafka,
    topic: o.countsTopic,
    groupId: `${o.groupId}.counts.${randomUUID()}`,
    logger: log,
    what: 'quota counts follower',
    maxWaitMs: 50,
    onMessage(msg) {
      const d = decodeQuotaCount(msg);
      if (d.type === 'invalid') {
        if (invalidCounts++ < 10) log.warn({ key: d.key, reason: d.reason }, 'invalid quota count record skipped');
        return;
      }
      publishLater(counts.onPublished(d.id, d.type === 'count' ? d.record : null, now(), Number(msg.timestamp)));
    },
    onBatchApplied(next, partition) {
      position.set(partition, next);
    },
    onReady() {},
  });

  /** Resolves once the follower has read the counts topic up to its end as it is now (or the wait ran out). */
  async function countsCaughtUp(): Promise<void> {
    const ends = await fetchTopicEnds(o.kafka, o.countsTopic, { logger: log });
    const deadline = Date.now() + (o.restoreTimeoutMs ?? 30_000);
    for (;;) {
      const pending = ends.filter((e) => e.high > e.low && (position.get(e.partition) ?? 0n) < e.high);
      if (pending.length === 0 || closing) return;
      if (Date.now() > deadline) {
        log.warn({ topic: o.countsTopic, partitions: pending.map((e) => e.partition) }, 'quota counts not read to their end in time: restoring what was read (global quotas may undercount this window)');
        return;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  const consumer: Consumer = o.kafka.consumer({ groupId: o.groupId, maxWaitTimeInMs: 50, allowAutoTopicCreation: false, sessionTimeout: 30_000, heartbeatInterval: 3_000, rebalanceTimeout: 60_000, retry: retryUntilStopped(stopped) });

  /**
   * Restores the counts of the owned partitions not restored yet, from the counts topic read to its
   * end; a partition the group has never committed is read from `replayMs` ago (by timestamp).
   */
  async function restore(): Promise<void> {
    await countsCaughtUp();
    const todo = parts.sorted().filter((p) => !parts.restored.has(p));
    if (todo.length === 0) return;
    const admin = o.kafka.admin();
    try {
      await admin.connect();
      const committed = await admin.fetchOffsets({ groupId: o.groupId, topics: [o.decisionsTopic] });
      const fresh = todo.filter((p) => (committed[0]?.partitions.find((x) => x.partition === p)?.offset ?? '-1') === '-1');
      if (fresh.length > 0) {
        const since = now() - (o.replayMs ?? 120_000);
        const offsets = await admin.fetchTopicOffsetsByTimestamp(o.decisionsTopic, since);
        for (const x of offsets) {
          if (!fresh.includes(x.partition) || !parts.owned.has(x.partition)) continue;
          consumer.seek({ topic: o.decisionsTopic, partition: x.partition, offset: x.offset });
          // Committed by the next checkpoint even if no event comes: a restart resumes from here.
          parts.next.set(x.partition, BigInt(x.offset));
        }
        log.info({ partitions: fresh, since: new Date(since).toISOString() }, 'quota counts: partitions never checkpointed, counted from the decisions since');
      }
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    const before = counts.restored;
    publishLater(counts.restore(todo, now()));
    for (const p of todo) if (parts.owned.has(p)) parts.restored.add(p);
    log.info({ partitions: todo, counts: counts.restored - before }, 'quota counts restored from the counts topic');
  }

  /** restore(), retried until it succeeds or the aggregator closes. */
  async function restoreAssigned(): Promise<void> {
    for (let attempt = 0; !closing; attempt++) {
      try {
        await restore();
        return;
      } catch (err) {
        const wait = backoffMs(attempt, 500, RESTORE_RETRY_MAX_MS);
        log.warn({ err: (err as Error).message, retryInMs: wait }, 'quota counts restore failed; retrying');
        await new Promise((r) => setTimeout(r, wait).unref());
      }
    }
  }

  /** Offsets committed last, per partition (nothing to commit when unchanged). */
  const committed = new Map<number, bigint>();
  let prepared: Promise<void> = new Promise(() => undefined);
  let markJoined!: () => void;
  const joined = new Promise<void>((r) => (markJoined = r));
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const revoked = parts.assign(e.payload.memberAssignment[o.decisionsTopic] ?? []);
    // The new owner restores these from our last checkpoint and replays from our last commit.
    if (revoked.size > 0) counts.drop(revoked);
    for (const p of revoked) committed.delete(p);
    log.info({ partitions: parts.sorted(), revoked: [...revoked] }, 'quota aggregator: decisions partitions assigned');
    prepared = restoreAssigned();
    void prepared.then(() => {
      if (closing) return;
      markJoined();
      o.running?.set(1);
    });
  });
  consumer.on(consumer.events.CRASH, () => o.running?.set(0));
  consumer.on(consumer.events.STOP, () => o.running?.set(0));

  let batchDone: Promise<void> = Promise.resolve();
  async function eachBatch({ batch, heartbeat, isStale, isRunning }: EachBatchPayload): Promise<void> {
    let release!: () => void;
    batchDone = new Promise((r) => (release = r));
    try {
      // Counting starts after the restore; keep the membership alive meanwhile.
      for (let done = false; !done && !closing; ) {
        done = await Promise.race([prepared.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 1000).unref())]);
        if (!done) await heartbeat();
      }
      // Seeked meanwhile (a partition never checkpointed): this batch is from before the seek.
      if (closing || isStale()) return;
      const p = batch.partition;
      if (!parts.owned.has(p)) return;
      const from = parts.next.get(p);
      let last: bigint | null = null;
      const out: QuotaRecord[] = [];
      for (const msg of batch.messages) {
        if (!isRunning() || isStale()) break;
        const offset = BigInt(msg.offset);
        // Already counted: after a rebalance kafkajs resumes a partition we kept from its last commit.
        if (from !== undefined && offset < from) continue;
        last = offset;
        // Most decisions count against no quota: skip them before parsing.
        if (!msg.value || !msg.value.includes('"quotas"')) continue;
        try {
          out.push(...counts.add(recordFromOcsf(JSON.parse(msg.value.toString('utf8'))), now(), p, offset));
        } catch (err) {
          log.debug({ err: (err as Error).message }, 'decision event not counted');
        }
      }
      // Set before any await: a checkpoint taken from here on covers these events.
      if (last !== null) parts.next.set(p, last + 1n);
      if (counts.takeHot()) checkpointSoon();
      await publish(out);
      await heartbeat();
    } finally {
      release();
    }
  }

  async function write(): Promise<void> {
    const cp = counts.checkpoint((p) => parts.next.get(p));
    const offsets = [...parts.next].filter(([p, next]) => parts.owned.has(p) && committed.get(p) !== next);
    if (cp.records.length === 0 && offsets.length === 0) return;
    try {
      const messages = cp.records.map((r) => ({ key: quotaCountKey(r.id), value: r.record ? JSON.stringify({ v: QUOTA_COUNT_VERSION, ...r.record }) : null }));
      for (let i = 0; i < messages.length; i += CHUNK) await o.producer.send({ topic: o.countsTopic, acks: -1, messages: messages.slice(i, i + CHUNK) });
      // Only now: whoever resumes from these offsets finds the counts that cover them.
      if (offsets.length > 0) {
        await consumer.commitOffsets(offsets.map(([partition, offset]) => ({ topic: o.decisionsTopic, partition, offset: offset.toString() })));
        for (const [p, next] of offsets) committed.set(p, next);
      }
      checkpoints++;
      o.checkpoints?.inc({ result: 'ok' });
    } catch (err) {
      cp.failed();
      o.checkpoints?.inc({ result: 'error' });
      log.warn({ err: (err as Error).message }, 'quota counts checkpoint failed; retrying at the next interval');
    }
  }
  const checkpoint = singleFlight(write);

  let soon: NodeJS.Timeout | null = null;
  function checkpointSoon(): void {
    if (soon || closing || checkpointMs <= HOT_CHECKPOINT_MS) return;
    soon = setTimeout(() => {
      soon = null;
      void checkpoint();
    }, HOT_CHECKPOINT_MS);
    soon.unref();
  }

  const cpTimer = setInterval(() => void checkpoint(), checkpointMs);
  cpTimer.unref();
  const sweep = setInterval(() => {
    const ended = counts.sweep(now());
    const messages = [...ended.quotas.map((e) => ({ topic: o.quotasTopic, key: quotaTopicKey(e.workload, e.rule, e.key) })), ...ended.counts.map((id) => ({ topic: o.countsTopic, key: quotaCountKey(id) }))];
    if (messages.length === 0) return;
    const byTopic = (topic: string) => messages.filter((m) => m.topic === topic).map((m) => ({ key: m.key, value: null }));
    o.producer
      .sendBatch({ topicMessages: [o.quotasTopic, o.countsTopic].map((topic) => ({ topic, messages: byTopic(topic) })).filter((t) => t.messages.length > 0) })
      .catch((err: Error) => log.warn({ err: err.message }, 'quota tombstones not written'));
  }, SWEEP_MS);
  sweep.unref();

  const start = async () => {
    await consumer.connect();
    await consumer.subscribe({ topics: [o.decisionsTopic], fromBeginning: false });
    await consumer.run({ autoCommit: false, partitionsConsumedConcurrently: 1, eachBatch });
  };
  restartAfterFatalCrash(consumer, start, { stopped, logger: log, what: 'quota aggregator' });
  start().catch((err: Error) => {
    if (!closing) log.error({ err: err.message }, 'quota aggregator did not start: global quotas are not enforced (local limits still are)');
  });

  return {
    joined,
    stats: () => ({ counted: counts.counted, restored: counts.restored, published, keys: counts.size, over: counts.overCount(now()), checkpoints, assigned: parts.sorted() }),
    total: (workload, rule, key) => counts.total(workload, rule, key),
    checkpoint,
    async close() {
      if (closing) return;
      closing = true;
      clearInterval(cpTimer);
      clearInterval(sweep);
      if (soon) clearTimeout(soon);
      // The last counts are checkpointed while still in the group (the commit needs it).
      consumer.pause([{ topic: o.decisionsTopic }]);
      await batchDone;
      await checkpoint();
      await consumer.disconnect().catch(() => undefined);
      await follower.close();
    },
  };
}
