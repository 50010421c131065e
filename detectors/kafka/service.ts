/**
 * The detector as a Kafka service (`palisade detector`), assembled from its
 * parts: topics.ts, outputs.ts, consumer.ts, state.ts (restore), checkpoints.ts,
 * expiry.ts.
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
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { startBlockListFeed, type BlockListFeed } from '../../src/blocklist/kafka-feed.ts';
import { createKafkaClient, type KafkaClientSettings } from '../../src/kafka/client.ts';
import type { TopicSettings } from '../../src/kafka/topics.ts';
import { createAlertmanagerPusher } from '../alerts/alertmanager.ts';
import { createWebhookSender } from '../alerts/webhook.ts';
import type { DetectorConfig } from '../config.ts';
import { Detector, type Alert } from '../detector.ts';
import type { DetectorMetrics } from '../metrics.ts';
import { createCheckpointer } from './checkpoints.ts';
import { createDecisionsConsumer } from './consumer.ts';
import { createExpirySweep } from './expiry.ts';
import { createKafkaOutputs, PRODUCER_OPTIONS } from './outputs.ts';
import { OwnedPartitions } from './partitions.ts';
import { createStateRestorer } from './state.ts';
import { prepareTopics } from './topics.ts';
import { startQuotaAggregator, type QuotaAggregator } from '../quota/aggregator.ts';

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
  /** The quota aggregator's (its own consumer group): partitions assigned, counts, records published. */
  quotaStats(): ReturnType<QuotaAggregator['stats']>;
  /** Writes changed state and commits offsets now. */
  checkpoint(): Promise<void>;
  close(): Promise<void>;
}

/** How long the start waits for the block list to be read before consuming decisions, ms. */
const BLOCKLIST_READY_WAIT_MS = 15_000;

export async function startKafkaDetector(o: KafkaDetectorOptions): Promise<KafkaDetector> {
  const { config, settings } = o;
  const log = o.logger.child({ part: 'detector' });
  const now = o.now ?? Date.now;
  const m = o.metrics;
  const kafka = o.kafka ?? createKafkaClient(settings, log);
  let closing = false;
  const stopped = () => closing;

  const topics = await prepareTopics(kafka, settings, config.kafka.stateTopic, log);
  const producer = kafka.producer(PRODUCER_OPTIONS);
  await producer.connect();

  const webhook = createWebhookSender(config.alerts.webhook, log, (ok) => m?.alertsPublished.inc({ channel: 'webhook', result: ok ? 'ok' : 'error' }));
  const alertmanager = createAlertmanagerPusher(config.alerts.alertmanager, { logger: log, now, onResult: (ok) => m?.alertsPublished.inc({ channel: 'alertmanager', result: ok ? 'ok' : 'error' }) });
  const out = createKafkaOutputs({ producer, alertsTopic: topics.alerts, blocklistTopic: topics.blocklist, encodeAlert: o.encodeAlert, webhook, alertmanager, metrics: m, log });
  const detector = new Detector({ config, logger: log, now, ...(m ? { metrics: m } : {}), outputs: out.outputs });

  // The block list as it is in force (also our own records, read back).
  const feed: BlockListFeed = startBlockListFeed({ kafka, topic: topics.blocklist, store: null, logger: log, groupId: `${config.kafka.groupId}.blocklist.${process.pid}.${Math.random().toString(36).slice(2)}`, onMessage: (msg) => {
      detector.onBlockList(msg);
      // A lifted or expired block (whoever lifted it) resolves its alerts in Alertmanager.
      if (msg.type === 'unblock') alertmanager?.resolveTarget(msg.key, msg.unblock.at || now());
      // Our blocks in force, some raised before a restart: lifting those resolves their alerts too.
      else if (msg.type === 'block') alertmanager?.adopt(msg.record);
    },
  });
  await Promise.race([feed.ready, new Promise((r) => setTimeout(r, BLOCKLIST_READY_WAIT_MS).unref())]);

  const partitions = new OwnedPartitions();
  const state = createStateRestorer({ kafka, stateTopic: topics.state, groupPrefix: config.kafka.groupId, detector, partitions, metrics: m, log, stopped });
  const decisions = createDecisionsConsumer({ kafka, topic: topics.decisions, config: config.kafka, detector, partitions, state, settleOutputs: out.settle, metrics: m, log, stopped });
  const checkpoints = createCheckpointer({ producer, consumer: decisions.consumer, engine: detector.engine, partitions, stateTopic: topics.state, decisionsTopic: topics.decisions, metrics: m, log });
  const expireBlocks = createExpirySweep({ producer, blocklistTopic: topics.blocklist, feedback: detector.feedback, now, metrics: m, log });

  await decisions.start();
  // Fleet-wide quotas (rate-limit rules with scope: global): a component of its own, its own group.
  const quotas = startQuotaAggregator({ kafka, producer, decisionsTopic: topics.decisions, quotasTopic: topics.quotas, countsTopic: topics.quotaCounts, groupId: `${config.kafka.groupId}.quotas`, logger: log, now, fairShare: config.kafka.quotaFairShare, replayMs: config.kafka.quotaReplayMs, checkpointMs: config.kafka.quotaCheckpointMs, ...(m ? { running: m.quotaAggregatorRunning, checkpoints: m.quotaCheckpoints } : {}) });
  const cpTimer = setInterval(() => void checkpoints.checkpoint(), config.kafka.checkpointIntervalMs);
  const expTimer = setInterval(() => void expireBlocks(), config.kafka.expirySweepMs);
  cpTimer.unref();
  expTimer.unref();
  log.info({ groupId: config.kafka.groupId, decisions: topics.decisions, state: topics.state }, 'detector consuming');

  return {
    detector,
    started: decisions.started,
    ready: () => decisions.joined() && partitions.allRestored(),
    stats: () => ({ assigned: partitions.sorted(), restoredClients: state.restoredClients(), ...decisions.stats(), ...out.counts(), checkpoints: checkpoints.count() }),
    quotaStats: () => quotas.stats(),
    checkpoint: checkpoints.checkpoint,
    async close() {
      if (closing) return;
      closing = true;
      clearInterval(cpTimer);
      clearInterval(expTimer);
      await decisions.pause();
      await out.settle();
      await checkpoints.checkpoint();
      await decisions.consumer.disconnect().catch(() => undefined);
      await quotas.close();
      await feed.close();
      await webhook?.drain();
      await alertmanager?.close();
      await producer.disconnect().catch(() => undefined);
    },
  };
}
