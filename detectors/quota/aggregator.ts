/**
 * The quota aggregator: a component of the detector process (started by
 * detectors/kafka/service.ts) that counts the decisions' `quotas` facts per
 * (workload, rule, key) and window (counts.ts), and publishes "near" and
 * "over" records to the compacted quota topic every sidecar follows; after a
 * window ends it writes tombstones so compaction drops its keys.
 *
 * It consumes the decisions topic in a consumer group of its own
 * ("<detector group>.quotas"): the detector's instances share its partitions
 * the way they share the detector's. Counts live in memory and are rebuilt,
 * not checkpointed: whenever the consumer joins its group (start, restart,
 * rebalance) it forgets them and re-reads its partitions from `replayMs` ago
 * (offsets by timestamp), which counts every window no longer than that
 * exactly; a longer window (hour, day) is counted from there (undercounted:
 * fails open, never refuses too much). Without a running aggregator nothing
 * new is published and global quotas are not enforced; local rate limits
 * still are (docs/quotas.md).
 */
import type { Consumer, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { recordFromOcsf } from '../../src/decision/ocsf/read.ts';
import { encodeQuota, quotaTopicKey, type QuotaRecord } from '../../src/ratelimit/quota-record.ts';
import { QuotaCounts } from './counts.ts';

export interface QuotaAggregatorOptions {
  readonly kafka: Kafka;
  readonly producer: Producer;
  readonly decisionsTopic: string;
  readonly quotasTopic: string;
  readonly groupId: string;
  readonly logger: Logger;
  readonly now?: () => number;
  /** Set to 1 while the consumer runs, 0 when it stops or crashes (the alert PalisadeQuotaAggregatorDown). */
  readonly running?: { set(v: number): void };
  /** How far back the decisions are re-read when the consumer joins its group, ms. Default 120000. */
  readonly replayMs?: number;
  /** Fair shares near the quota (default true). */
  readonly fairShare?: boolean;
}

export interface QuotaAggregator {
  /** Resolves when the consumer has joined its group (counting from then on). */
  readonly joined: Promise<void>;
  stats(): { readonly counted: number; readonly published: number; readonly keys: number; readonly over: number };
  close(): Promise<void>;
}

const SWEEP_MS = 1000;

export function startQuotaAggregator(o: QuotaAggregatorOptions): QuotaAggregator {
  const log = o.logger.child({ part: 'quota-aggregator' });
  const now = o.now ?? Date.now;
  const counts = new QuotaCounts(o.fairShare === undefined ? {} : { fairShare: o.fairShare });
  let published = 0;
  let closed = false;
  const consumer: Consumer = o.kafka.consumer({ groupId: o.groupId, maxWaitTimeInMs: 50, allowAutoTopicCreation: false, sessionTimeout: 30_000, heartbeatInterval: 3_000 });

  async function publish(records: QuotaRecord[]): Promise<void> {
    if (records.length === 0) return;
    await o.producer.send({ topic: o.quotasTopic, messages: records.map((r) => encodeQuota(r)) });
    published += records.length;
    for (const r of records) log.info({ workload: r.workload, rule: r.rule, state: r.state, until: new Date(r.until).toISOString(), count: r.count, limit: r.limit, sidecars: r.sidecars, share: r.share }, r.state === 'over' ? 'key over global quota' : 'key near global quota');
  }

  /** Set while a join's seek back is being prepared: batches fetched meanwhile are from before it and are dropped. */
  let seeking = false;

  async function replayFrom(assigned: readonly number[]): Promise<void> {
    seeking = true;
    counts.clear();
    const admin = o.kafka.admin();
    try {
      await admin.connect();
      const since = now() - (o.replayMs ?? 120_000);
      const offsets = await admin.fetchTopicOffsetsByTimestamp(o.decisionsTopic, since);
      for (const p of offsets) if (assigned.includes(p.partition)) consumer.seek({ topic: o.decisionsTopic, partition: p.partition, offset: p.offset });
      log.info({ partitions: assigned, since: new Date(since).toISOString() }, 'quota counts rebuilt from the decisions since');
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'quota counts not rebuilt: counting from the current position (global quotas undercount this window)');
    } finally {
      seeking = false;
      await admin.disconnect().catch(() => undefined);
    }
  }

  async function eachBatch({ batch }: EachBatchPayload): Promise<void> {
    if (seeking) return;
    const out: QuotaRecord[] = [];
    for (const msg of batch.messages) {
      // Most decisions count against no quota: skip them before parsing.
      if (!msg.value || !msg.value.includes('"quotas"')) continue;
      try {
        out.push(...counts.add(recordFromOcsf(JSON.parse(msg.value.toString('utf8'))), now()));
      } catch (err) {
        log.debug({ err: (err as Error).message }, 'decision event not counted');
      }
    }
    await publish(out);
  }

  const sweep = setInterval(() => {
    const ended = counts.sweep(now());
    if (ended.length === 0) return;
    o.producer.send({ topic: o.quotasTopic, messages: ended.map((e) => ({ key: quotaTopicKey(e.workload, e.rule, e.key), value: null })) }).catch((err: Error) => log.warn({ err: err.message }, 'quota tombstones not written'));
  }, SWEEP_MS);
  sweep.unref();

  let markJoined!: () => void;
  const joined = new Promise<void>((r) => (markJoined = r));
  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const assigned = e.payload.memberAssignment[o.decisionsTopic] ?? [];
    void replayFrom(assigned).then(() => {
      markJoined();
      o.running?.set(1);
    });
  });
  consumer.on(consumer.events.CRASH, () => o.running?.set(0));
  consumer.on(consumer.events.STOP, () => o.running?.set(0));
  const started = (async () => {
    await consumer.connect();
    await consumer.subscribe({ topics: [o.decisionsTopic], fromBeginning: false });
    await consumer.run({ autoCommit: true, eachBatch });
  })();
  started.catch((err: Error) => {
    if (!closed) log.error({ err: err.message }, 'quota aggregator did not start: global quotas are not enforced (local limits still are)');
  });

  return {
    joined,
    stats: () => ({ counted: counts.counted, published, keys: counts.size, over: counts.overCount(now()) }),
    async close() {
      closed = true;
      clearInterval(sweep);
      await consumer.disconnect().catch(() => undefined);
    },
  };
}
