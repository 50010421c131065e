/**
 * A detector test world on the real broker: unique topic names and group ids
 * per test file, sidecars (harnesses) publishing decisions to Kafka and
 * following the block-list topic, and detector instances.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { encodeAlert } from '../../../detectors/alerts/ocsf.ts';
import { parseDetectorConfig, type DetectorConfigInput } from '../../../detectors/config.ts';
import { startKafkaDetector, type KafkaDetector } from '../../../detectors/kafka/service.ts';
import { loadSettings, type Settings } from '../../../src/config/settings.ts';
import { createKafkaSink } from '../../../src/decision/sinks/kafka/index.ts';
import { createKafkaClient } from '../../../src/kafka/client.ts';
import { createLogger } from '../../../src/log/logger.ts';
import { createDetectorMetrics, type DetectorMetrics } from '../../../detectors/metrics.ts';
import { startHarness, type Harness } from '../../support/harness.ts';

export const BROKERS = process.env['PALISADE_KAFKA_BROKERS'] ?? '127.0.0.1:19092';

export const API_POLICY = `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: detector-kafka, version: "1" }
spec:
  authorization:
    rules:
      - id: api
        paths: [/**]
        public: true
`;

export interface World {
  readonly id: string;
  /** PALISADE_* variables naming this world's broker and topics. */
  readonly env: Record<string, string>;
  readonly settings: Settings;
  readonly kafka: Kafka;
  readonly groupId: string;
  readonly stateTopic: string;
  sidecar(): Promise<Harness>;
  /** A detector in this world's group; `kafka` and `logger` replace the world's (fault injection, log checks). */
  detector(config?: DetectorConfigInput, metrics?: DetectorMetrics, o?: { kafka?: Kafka; logger?: Logger }): Promise<KafkaDetector>;
  close(): Promise<void>;
}

export function createWorld(tag: string): World {
  const id = `${tag}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const prefix = `palisade-test-det-${id}`;
  const env = {
    PALISADE_KAFKA_BROKERS: BROKERS,
    PALISADE_KAFKA_TOPIC_DECISIONS: `${prefix}.decisions`,
    PALISADE_KAFKA_TOPIC_BLOCKLIST: `${prefix}.blocklist`,
    PALISADE_KAFKA_TOPIC_ALERTS: `${prefix}.alerts`,
    PALISADE_KAFKA_TOPIC_QUOTAS: `${prefix}.quotas`,
    PALISADE_KAFKA_TOPIC_PARTITIONS: '3',
    PALISADE_KAFKA_TOPIC_REPLICATION: '1',
    PALISADE_KAFKA_LINGER_MS: '20',
    PALISADE_LOG_LEVEL: 'silent',
  };
  const settings = loadSettings(env);
  const logger = createLogger({ level: 'silent' });
  const kafka = createKafkaClient(settings, logger);
  const groupId = `${prefix}.detector`;
  const stateTopic = `${prefix}.state`;
  const harnesses: Harness[] = [];
  const detectors: KafkaDetector[] = [];
  return {
    id,
    env,
    settings,
    kafka,
    groupId,
    stateTopic,
    async sidecar() {
      // The harness keeps its in-memory sink; the Kafka sink is teed beside it. The sidecar's
      // block-list feed starts from the same settings (compose.ts).
      const sink = await createKafkaSink(settings, logger);
      const h = await startHarness(API_POLICY, { env, sink });
      harnesses.push(h);
      return h;
    },
    async detector(config = {}, metrics = createDetectorMetrics(new Registry(), { processMetrics: false }), o = {}) {
      const cfg = parseDetectorConfig({ ...config, kafka: { groupId, stateTopic, checkpointIntervalMs: 1000, expirySweepMs: 300, ...config.kafka } });
      const d = await startKafkaDetector({ settings, config: cfg, logger: o.logger ?? logger, encodeAlert, metrics, kafka: o.kafka ?? kafka });
      detectors.push(d);
      await d.started;
      return d;
    },
    async close() {
      await Promise.allSettled(detectors.map((d) => d.close()));
      await Promise.allSettled(harnesses.map((h) => h.close()));
      const admin = kafka.admin();
      await admin.connect();
      try {
        const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
        if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => undefined);
        await admin.deleteGroups([groupId]).catch(() => undefined);
        // The detector's quota aggregator consumes in a group of its own.
        await admin.deleteGroups([`${groupId}.quotas`]).catch(() => undefined);
      } finally {
        await admin.disconnect();
      }
    },
  };
}

/** Polls until cond() holds (async), for things that arrive through Kafka. */
export async function eventually(cond: () => boolean | Promise<boolean>, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
