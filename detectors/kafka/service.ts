/**
 * The detector as a Kafka service (`palisade detector`):
 *
 * - a consumer group on the decisions topic: events are keyed by client, so
 *   each instance owns a set of clients and more instances scale it out;
 * - per-client state is checkpointed to the compacted state topic (into the
 *   partition the client's decisions come from), and consumer offsets are
 *   committed only after the checkpoint that covers them, so an instance
 *   taking a partition over restores the state and replays exactly the events
 *   after it; on assignment, state is restored before the first event;
 * - alerts go to the alerts topic (OCSF Detection Finding), Alertmanager and
 *   the webhook; a block lifted or expired on the topic resolves its alerts;
 *   blocks and expiry tombstones go to the compacted block-list topic, which
 *   the detector also reads back (what is in force, manual unblocks).
 */
import kafkajs, { type Consumer, type EachBatchPayload, type Kafka, type Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { startBlockListFeed, type BlockListFeed } from '../../src/blocklist/kafka-feed.ts';
import { encodeBlock, encodeUnblock } from '../../src/blocklist/kafka-record.ts';
import type { BlockKind } from '../../src/blocklist/entry.ts';
import { recordFromOcsf } from '../../src/decision/ocsf/read.ts';
import { PalisadeError } from '../../src/errors/codes.ts';
import { createKafkaClient, restartAfterFatalCrash, retryUntilStopped, type KafkaClientSettings } from '../../src/kafka/client.ts';
import { ensureTopics, palisadeTopics, type TopicSettings } from '../../src/kafka/topics.ts';
import type { DetectorMetrics } from '../metrics.ts';
import { backoffMs } from '../../src/util/backoff.ts';
import { createAlertmanagerPusher } from '../alerts/alertmanager.ts';
import { createWebhookSender, type WebhookSender } from '../alerts/webhook.ts';
import type { DetectorConfig } from '../config.ts';
import { Detector, type Alert } from '../detector.ts';
import type { SerializedClient } from '../engine/client-state.ts';
import { POPULATION_KEY, readState } from './restore.ts';

export type DetectorKafkaSettings = KafkaClientSettings &
  TopicSettings & {
    readonly kafkaCreateTopics: boolean;
  };

export interface KafkaDetectorOptions {
  readonly settings: DetectorKafkaSettings;
  readonly config: DetectorConfig;
  readonly logger: Logger;
  /** How an alert is written to the alerts topic (the OCSF Detection Finding). */
  readonly encodeAlert: (alert: Alert) => unknown;
  readonly metrics?: DetectorMetrics;
  /** A prepared client (tests); default: from the settings. */
  readonly kafka?: Kafka;
  /** Wall clock. */
  readonly now?: () => number;
}

export interface KafkaDetectorStats {
  readonly assigned: readonly number[];
  readonly restoredClients: number;
  readonly consumed: number;
  readonly invalid: number;
  readonly alerts: number;
  readonly blocks: number;
  readonly checkpoints: number;
}

export interface KafkaDetector {
  readonly detector: Detector;
  /** True once the consumer joined its group and restored the state of its partitions. */
  ready(): boolean;
  /**
   * Resolves when first ready. A consumer crash is not a start failure: kafkajs restarts it, or
   * restartAfterFatalCrash does, so this waits through it (as /readyz does).
   */
  readonly started: Promise<void>;
  stats(): KafkaDetectorStats;
  /** Writes changed state and commits offsets now. */
  checkpoint(): Promise<void>;
  close(): Promise<void>;
}

const STATE_CHUNK = 500;
/** Longest pause between two attempts to restore the assigned partitions' state, ms. */
const RESTORE_RETRY_MAX_MS = 10_000;
// kafkajs is CommonJS: named exports come from the default export. Alerts are keyed by client with the
// default (Java-compatible murmur2) partitioner, chosen explicitly (also silences kafkajs' v2 warning).
const { Partitioners } = kafkajs;

export async function startKafkaDetector(o: KafkaDetectorOptions): Promise<KafkaDetector> {
  const { config, settings } = o;
  const log = o.logger.child({ part: 'detector' });
  const now = o.now ?? Date.now;
  const m = o.metrics;
  const kafka = o.kafka ?? createKafkaClient(settings, log);
  const topics = palisadeTopics({ ...settings, kafkaTopicDetectorState: config.kafka.stateTopic });
  const decisionsTopic = topics.decisions.name;
  const stateTopic = topics.detectorState.name;
  const blocklistTopic = topics.blocklist.name;
  const alertsTopic = topics.alerts.name;

  // ---- topics: create the missing ones; the state topic must be co-partitioned ----
  const admin = kafka.admin();
  await admin.connect();
  try {
    if (settings.kafkaCreateTopics) await ensureTopics(admin, [topics.decisions, topics.blocklist, topics.alerts, topics.detectorState], log);
    const meta = await admin.fetchTopicMetadata({ topics: [decisionsTopic, stateTopic] });
    const count = (name: string) => meta.topics.find((t) => t.name === name)?.partitions.length ?? 0;
    if (count(stateTopic) < count(decisionsTopic)) {
      throw new PalisadeError('CONFIG_INVALID', `detector state topic ${stateTopic} has ${count(stateTopic)} partitions but ${decisionsTopic} has ${count(decisionsTopic)}: it needs at least as many (co-partitioned checkpoints)`);
    }
  } finally {
    await admin.disconnect();
  }

  const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 5, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();

  // ---- outputs ----
  let alerts = 0;
  let blocks = 0;
  const inFlight = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };
  const webhook: WebhookSender | null = createWebhookSender(config.alerts.webhook, log, (ok) => m?.alertsPublished.inc({ channel: 'webhook', result: ok ? 'ok' : 'error' }));
  const alertmanager = createAlertmanagerPusher(config.alerts.alertmanager, { logger: log, now, onResult: (ok) => m?.alertsPublished.inc({ channel: 'alertmanager', result: ok ? 'ok' : 'error' }) });
  const detector = new Detector({
    config,
    logger: log,
    now,
    ...(m ? { metrics: m } : {}),
    outputs: {
      alert(a) {
        alerts++;
        webhook?.send(a);
        alertmanager?.fire(a);
        track(
          producer.send({ topic: alertsTopic, acks: -1, messages: [{ key: a.anomaly.client.key, value: JSON.stringify(o.encodeAlert(a)), headers: { 'palisade-detection': a.anomaly.detection, 'palisade-severity': a.anomaly.severity } }] }).then(
            () => m?.alertsPublished.inc({ channel: 'kafka', result: 'ok' }),
            (err: Error) => {
              m?.alertsPublished.inc({ channel: 'kafka', result: 'error' });
              log.error({ err: err.message, alert: a.id }, 'alert not published');
            },
          ),
        );
      },
      block(r) {
        blocks++;
        track(
          producer.send({ topic: blocklistTopic, acks: -1, messages: [encodeBlock(r)] }).catch((err: Error) => {
            log.error({ err: err.message, kind: r.kind }, 'block not published');
          }),
        );
      },
    },
  });

  // ---- the block list as it is in force (also our own records, read back) ----
  const feed: BlockListFeed = startBlockListFeed({ kafka, topic: blocklistTopic, store: null, logger: log, groupId: `${config.kafka.groupId}.blocklist.${process.pid}.${Math.random().toString(36).slice(2)}`, onMessage: (msg) => {
      detector.onBlockList(msg);
      // A lifted or expired block (whoever lifted it) resolves its alerts in Alertmanager.
      if (msg.type === 'unblock') alertmanager?.resolveTarget(msg.key, msg.unblock.at || now());
    },
  });
  await Promise.race([feed.ready, new Promise((r) => setTimeout(r, 15_000).unref())]);

  // ---- consumer group on the decisions topic ----
  const owned = new Set<number>();
  const restored = new Set<number>();
  const last = new Map<number, bigint>();
  let consumed = 0;
  let invalid = 0;
  let restoredClients = 0;
  let checkpoints = 0;
  let closing = false;
  let joined = false;
  let batchDone: Promise<void> = Promise.resolve();
  let markStarted!: () => void;
  const started = new Promise<void>((res) => {
    markStarted = res;
  });

  const consumer: Consumer = kafka.consumer({
    groupId: config.kafka.groupId,
    maxWaitTimeInMs: config.kafka.maxWaitMs,
    allowAutoTopicCreation: false,
    sessionTimeout: 30_000,
    heartbeatInterval: 3_000,
    rebalanceTimeout: 60_000,
    retry: retryUntilStopped(() => closing),
  });

  function onAssignment(partitions: readonly number[]): void {
    const next = new Set(partitions);
    const revoked = new Set([...owned].filter((p) => !next.has(p)));
    if (revoked.size > 0) {
      // Another instance restores these from the last checkpoint and replays from the last commit.
      const dropped = detector.engine.dropPartitions(revoked);
      for (const p of revoked) {
        restored.delete(p);
        last.delete(p);
      }
      log.info({ revoked: [...revoked], clients: dropped }, 'partitions handed over');
    }
    owned.clear();
    for (const p of next) owned.add(p);
    joined = true;
    log.info({ partitions: [...owned].sort((a, b) => a - b) }, 'decisions partitions assigned');
  }

  consumer.on(consumer.events.GROUP_JOIN, (e) => {
    const assignment = e.payload.memberAssignment[decisionsTopic] ?? [];
    onAssignment(assignment);
    // Nothing to restore (no partitions): ready now; else the first batch per partition restores.
    if (assignment.length === 0) markStarted();
    else void restoreAssigned(assignment);
  });
  consumer.on(consumer.events.CRASH, (e) => {
    // Out of the group until it joins again (kafkajs's restart, or restartAfterFatalCrash): not ready.
    joined = false;
    log.error({ err: (e.payload.error as Error).message, restart: e.payload.restart }, 'decisions consumer crashed');
  });

  /**
   * Restores what the group just assigned, retrying a failure: not left to the first batch of a
   * partition, which may not come for a long time on a quiet topic, leaving the detector unready.
   */
  async function restoreAssigned(partitions: readonly number[]): Promise<void> {
    for (let attempt = 0; !closing; attempt++) {
      try {
        // Partitions revoked meanwhile are skipped by restore(): the next assignment's call owns them.
        await restore(partitions);
        markStarted();
        return;
      } catch (err) {
        if (closing) return;
        const wait = backoffMs(attempt, 500, RESTORE_RETRY_MAX_MS);
        log.warn({ err: (err as Error).message, retryInMs: wait }, 'detector state restore failed; retrying');
        await new Promise((r) => setTimeout(r, wait).unref());
      }
    }
  }

  let restoring: Promise<void> | null = null;
  /** Restores the state of assigned partitions not restored yet (one pass for all of them). */
  async function restore(partitions: readonly number[], heartbeat?: () => Promise<void>): Promise<void> {
    // Another caller's failure is its own to report; this one tries for itself.
    while (restoring) await restoring.catch(() => undefined);
    const todo = partitions.filter((p) => owned.has(p) && !restored.has(p));
    if (todo.length === 0) return;
    restoring = (async () => {
      const t0 = Date.now();
      const state = await readState({ kafka, topic: stateTopic, partitions: todo, groupPrefix: config.kafka.groupId, logger: log, ...(heartbeat ? { heartbeat } : {}) });
      let n = 0;
      for (const [p, clients] of state.clients) {
        if (!owned.has(p)) continue;
        for (const [key, buf] of clients) {
          // Events of this client may already be in memory (a batch before the restore): the checkpoint is older.
          if (detector.engine.clients.has(key)) continue;
          try {
            detector.engine.restoreClient(JSON.parse(buf.toString('utf8')) as SerializedClient, p);
            n++;
          } catch (err) {
            log.warn({ err: (err as Error).message, partition: p, key: key.slice(0, 100) }, 'unreadable checkpoint skipped');
          }
        }
      }
      for (const p of todo) if (owned.has(p)) restored.add(p);
      if (state.population && detector.engine.population.samples === 0) {
        try {
          detector.engine.population.load(JSON.parse(state.population.toString('utf8')));
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'unreadable population snapshot skipped');
        }
      }
      restoredClients += n;
      m?.clientsTracked.set(detector.engine.clients.size);
      log.info({ partitions: todo, clients: n, records: state.records, ms: Date.now() - t0 }, 'baselines restored from the state topic');
    })();
    try {
      await restoring;
    } finally {
      restoring = null;
    }
  }

  async function eachBatch({ batch, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    let release!: () => void;
    batchDone = new Promise((r) => (release = r));
    try {
      const p = batch.partition;
      if (closing) return;
      if (!owned.has(p)) owned.add(p);
      if (!restored.has(p)) await restore([...owned], heartbeat);
      const t0 = process.hrtime.bigint();
      let n = 0;
      let lastOffset: string | null = null;
      for (const msg of batch.messages) {
        if (closing || !isRunning() || isStale()) break;
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
      if (lastOffset !== null) last.set(p, BigInt(lastOffset) + 1n);
      consumed += n;
      m?.eventsConsumed.inc(n);
      m?.eventProcessing.observe(Number(process.hrtime.bigint() - t0) / 1e9);
      m?.consumerLag.set({ partition: String(p) }, Math.max(0, Number(batch.offsetLag())));
      // Alerts and blocks of this batch are on their way; wait for them before taking more.
      if (inFlight.size > 0) await Promise.allSettled([...inFlight]);
      await heartbeat();
    } finally {
      release();
    }
  }

  let checkpointing: Promise<void> | null = null;
  async function checkpoint(): Promise<void> {
    if (checkpointing) return checkpointing;
    checkpointing = (async () => {
      const e = detector.engine;
      const written: { dirty: boolean }[] = [];
      const messages: { partition: number; key: string; value: string | null }[] = [];
      for (const c of e.dirtyClients()) {
        if (!owned.has(c.partition)) continue;
        messages.push({ partition: c.partition, key: c.key, value: JSON.stringify(c.toJSON()) });
        c.dirty = false;
        written.push(c);
      }
      for (const ev of e.drainEvicted()) if (owned.has(ev.partition)) messages.push({ partition: ev.partition, key: ev.key, value: null });
      if (owned.size > 0 && e.population.samples > 0) messages.push({ partition: 0, key: POPULATION_KEY, value: JSON.stringify(e.population.toJSON()) });
      // Offsets covered by this snapshot; events processed during the write are committed next time.
      const offsets = [...last].filter(([p]) => owned.has(p)).map(([partition, offset]) => ({ topic: decisionsTopic, partition, offset: offset.toString() }));
      try {
        for (let i = 0; i < messages.length; i += STATE_CHUNK) {
          await producer.send({ topic: stateTopic, acks: -1, messages: messages.slice(i, i + STATE_CHUNK) });
        }
        if (offsets.length > 0) await consumer.commitOffsets(offsets);
        checkpoints++;
        m?.checkpoints.inc({ result: 'ok' });
      } catch (err) {
        for (const c of written) c.dirty = true;
        m?.checkpoints.inc({ result: 'error' });
        log.warn({ err: (err as Error).message }, 'checkpoint failed; retrying at the next interval');
      }
      m?.clientsTracked.set(e.clients.size);
    })();
    try {
      await checkpointing;
    } finally {
      checkpointing = null;
    }
  }

  /** Tombstones blocks whose expiry passed, so the compacted topic holds only what is in force. */
  async function expireBlocks(): Promise<void> {
    const expired = detector.feedback.takeExpired(now());
    m?.blocksActive.set(detector.feedback.activeBlocks().size);
    if (expired.length === 0) return;
    const messages = expired.map((key) => {
      const i = key.indexOf(':');
      return encodeUnblock({ kind: key.slice(0, i) as BlockKind, value: key.slice(i + 1), source: 'expiry', at: now(), actor: 'palisade-detector', reason: 'block expired' });
    });
    try {
      await producer.send({ topic: blocklistTopic, acks: -1, messages });
      m?.blocksExpired.inc(expired.length);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'expiry tombstones not published');
    }
  }

  const startConsumer = async () => {
    await consumer.connect();
    await consumer.subscribe({ topics: [decisionsTopic], fromBeginning: false });
    await consumer.run({ autoCommit: false, partitionsConsumedConcurrently: 1, eachBatch });
  };
  // Not ready (and `started` not settled) until a start joins the group and restores.
  restartAfterFatalCrash(consumer, startConsumer, { stopped: () => closing, logger: log, what: 'detector decisions' });
  await startConsumer();

  const cpTimer = setInterval(() => void checkpoint(), config.kafka.checkpointIntervalMs);
  const expTimer = setInterval(() => void expireBlocks(), config.kafka.expirySweepMs);
  cpTimer.unref();
  expTimer.unref();
  log.info({ groupId: config.kafka.groupId, decisions: decisionsTopic, state: stateTopic }, 'detector consuming');

  return {
    detector,
    started,
    ready: () => joined && [...owned].every((p) => restored.has(p)),
    stats: () => ({ assigned: [...owned].sort((a, b) => a - b), restoredClients, consumed, invalid, alerts, blocks, checkpoints }),
    checkpoint,
    async close() {
      if (closing) return;
      closing = true;
      clearInterval(cpTimer);
      clearInterval(expTimer);
      consumer.pause([{ topic: decisionsTopic }]);
      await batchDone;
      await Promise.allSettled([...inFlight]);
      await checkpoint();
      await consumer.disconnect().catch(() => undefined);
      await feed.close();
      await webhook?.drain();
      await alertmanager?.close();
      await producer.disconnect().catch(() => undefined);
    },
  };
}
