/**
 * The consumer group on the decisions topic. Events are keyed by client, so each instance owns a
 * set of clients and more instances scale it out. On assignment the state of the new partitions
 * is restored (state.ts) before their first event; revoked partitions' clients are dropped (the
 * next owner restores them from the last checkpoint and replays from the last commit). Offsets
 * are not committed here but by the checkpoint that covers them (checkpoints.ts).
 */
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { recordFromOcsf } from '../../src/decision/ocsf/read.ts';
import { restartAfterFatalCrash, retryUntilStopped } from '../../src/kafka/client.ts';
import type { DetectorConfig } from '../config.ts';
import type { Detector } from '../detector.ts';
import type { DetectorMetrics } from '../metrics.ts';
import type { OwnedPartitions } from './partitions.ts';
import type { StateRestorer } from './state.ts';

export interface DecisionsConsumer {
  readonly consumer: Consumer;
  /** Connects, subscribes and runs (again after a crash kafkajs does not restart). */
  start(): Promise<void>;
  /** Resolves when first joined and restored. */
  readonly started: Promise<void>;
  /** In the group now (false after a crash until it joins again). */
  joined(): boolean;
  stats(): { readonly consumed: number; readonly invalid: number };
  /** Stops taking batches and waits for the one being processed. */
  pause(): Promise<void>;
}

export interface DecisionsConsumerOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  readonly config: DetectorConfig['kafka'];
  readonly detector: Detector;
  readonly partitions: OwnedPartitions;
  readonly state: StateRestorer;
  /** Alerts and blocks of a batch are sent before the next batch is taken. */
  readonly settleOutputs: () => Promise<void>;
  readonly metrics: DetectorMetrics | undefined;
  readonly log: Logger;
  readonly stopped: () => boolean;
}

export function createDecisionsConsumer(o: DecisionsConsumerOptions): DecisionsConsumer {
  const { detector, partitions: parts, state, log } = o;
  const m = o.metrics;
  let consumed = 0;
  let invalid = 0;
  let joined = false;
  let batchDone: Promise<void> = Promise.resolve();
  let markStarted!: () => void;
  const started = new Promise<void>((res) => {
    markStarted = res;
  });

  const consumer: Consumer = o.kafka.consumer({
    groupId: o.config.groupId,
    maxWaitTimeInMs: o.config.maxWaitMs,
    allowAutoTopicCreation: false,
    sessionTimeout: 30_000,
    heartbeatInterval: 3_000,
    rebalanceTimeout: 60_000,
    retry: retryUntilStopped(o.stopped),
  });

  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const assignment = e.payload.memberAssignment[o.topic] ?? [];
    const revoked = parts.assign(assignment);
    if (revoked.size > 0) {
      // Another instance restores these from the last checkpoint and replays from the last commit.
      const dropped = detector.engine.dropPartitions(revoked);
      log.info({ revoked: [...revoked], clients: dropped }, 'partitions handed over');
    }
    joined = true;
    log.info({ partitions: parts.sorted() }, 'decisions partitions assigned');
    // Nothing to restore (no partitions): ready now; else restore before counting as started.
    if (assignment.length === 0) markStarted();
    else void state.restoreAssigned(assignment).then((ok) => ok && markStarted());
  });
  consumer.on(consumer.events.CRASH, (e) => {
    // Out of the group until it joins again (kafkajs's restart, or restartAfterFatalCrash): not ready.
    joined = false;
    log.error({ err: (e.payload.error as Error).message, restart: e.payload.restart }, 'decisions consumer crashed');
  });

  async function eachBatch({ batch, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    let release!: () => void;
    batchDone = new Promise((r) => (release = r));
    try {
      const p = batch.partition;
      if (o.stopped()) return;
      if (!parts.owned.has(p)) parts.owned.add(p);
      if (!parts.restored.has(p)) await state.restore([...parts.owned], heartbeat);
      const t0 = process.hrtime.bigint();
      let n = 0;
      let lastOffset: string | null = null;
      for (const msg of batch.messages) {
        if (o.stopped() || !isRunning() || isStale()) break;
        n++;
        lastOffset = msg.offset;
        if (msg.value !== null) {
          let record;
          try {
            record = recordFromOcsf(JSON.parse(msg.value.toString('utf8')));
          } catch {
            invalid++;
            m?.eventsInvalid.inc();
            record = null;
          }
          if (record) detector.observe(record, p);
        }
      }
      if (lastOffset !== null) parts.next.set(p, BigInt(lastOffset) + 1n);
      consumed += n;
      m?.eventsConsumed.inc(n);
      m?.eventProcessing.observe(Number(process.hrtime.bigint() - t0) / 1e9);
      m?.consumerLag.set({ partition: String(p) }, Math.max(0, Number(batch.offsetLag())));
      // Alerts and blocks of this batch are on their way; wait for them before taking more.
      await o.settleOutputs();
      await heartbeat();
    } finally {
      release();
    }
  }

  const start = async () => {
    await consumer.connect();
    await consumer.subscribe({ topics: [o.topic], fromBeginning: false });
    await consumer.run({ autoCommit: false, partitionsConsumedConcurrently: 1, eachBatch });
  };
  // Not ready (and `started` not settled) until a start joins the group and restores.
  restartAfterFatalCrash(consumer, start, { stopped: o.stopped, logger: log, what: 'detector decisions' });

  return {
    consumer,
    start,
    started,
    joined: () => joined,
    stats: () => ({ consumed, invalid }),
    async pause() {
      consumer.pause([{ topic: o.topic }]);
      await batchDone;
    },
  };
}
