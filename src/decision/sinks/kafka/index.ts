/**
 * The Kafka decision sink from process settings (what compose.ts calls):
 * kafkajs client (src/kafka/client.ts), topics (src/kafka/topics.ts), the disk
 * spool, the publisher and the background loop (sink.ts). Opening it touches
 * only the spool directory; Kafka is reached in the background, so a sidecar
 * starts and serves while the broker is away. With PALISADE_KAFKA_AUTHENTICATIONS,
 * the OCSF Authentication events go to their own topic beside the decisions
 * (authentications.ts).
 */
import type { Logger } from 'pino';
import type { Settings } from '../../../config/settings.ts';
import { createKafkaClient } from '../../../kafka/client.ts';
import { palisadeTopics } from '../../../kafka/topics.ts';
import { eventDetailOf } from '../../encode.ts';
import type { DecisionRecord } from '../../record.ts';
import { createPublisher, type Compression } from './publisher.ts';
import { createAuthenticationsCore, withAuthentications } from './authentications.ts';
import { createKafkaSinkCore, type KafkaSink, type KafkaSinkStats } from './sink.ts';
import { openSpool, parseFsyncPolicy } from './spool.ts';

export type { KafkaSink, KafkaSinkStats } from './sink.ts';

export type KafkaSinkSettings = Pick<
  Settings,
  | 'kafkaBrokers' | 'kafkaClientId' | 'kafkaTopicDecisions' | 'kafkaTopicBlocklist' | 'kafkaTopicAlerts' | 'kafkaCreateTopics'
  | 'kafkaAuthentications' | 'kafkaTopicAuthentications'
  | 'kafkaTopicPartitions' | 'kafkaTopicReplication' | 'kafkaDecisionsRetentionMs' | 'kafkaTls' | 'kafkaTlsCa' | 'kafkaTlsCert'
  | 'kafkaTlsKey' | 'kafkaSaslMechanism' | 'kafkaSaslUsername' | 'kafkaSaslPasswordFile' | 'kafkaOauthTokenFile'
  | 'kafkaConnectTimeoutMs' | 'kafkaRequestTimeoutMs' | 'kafkaBatchSize' | 'kafkaLingerMs' | 'kafkaBufferEvents'
  | 'kafkaCompression' | 'spoolDir' | 'spoolMaxBytes' | 'spoolFsync' | 'shutdownGraceMs'
> &
  /** PALISADE_EVENT_DETAIL; default "standard". */
  Partial<Pick<Settings, 'eventDetail'>>;

export interface KafkaSinkExtras {
  readonly encode?: (r: DecisionRecord) => unknown;
  readonly onStats?: (s: KafkaSinkStats) => void;
}

export async function createKafkaSink(settings: KafkaSinkSettings, logger: Logger, extras: KafkaSinkExtras = {}): Promise<KafkaSink> {
  const log = logger.child({ part: 'kafka-sink' });
  const kafka = createKafkaClient(settings, log);
  const topics = palisadeTopics(settings);
  const spool = settings.spoolDir ? await openSpool({ dir: settings.spoolDir, maxBytes: settings.spoolMaxBytes, fsync: parseFsyncPolicy(settings.spoolFsync) }, log) : null;
  if (!spool) log.warn('PALISADE_SPOOL_DIR is not set: while Kafka is unreachable, decision events beyond the memory buffer are dropped');
  const publisher = createPublisher({
    kafka,
    topic: settings.kafkaTopicDecisions,
    // The sidecar creates the topics the sidecars and the detector share; the detector creates its state topic.
    ensure: settings.kafkaCreateTopics ? [topics.decisions, topics.blocklist, topics.alerts] : [],
    compression: settings.kafkaCompression as Compression,
    ackTimeoutMs: settings.kafkaRequestTimeoutMs,
    logger: log,
  });
  const decisions = createKafkaSinkCore({
    publisher,
    spool,
    logger: log,
    batchSize: settings.kafkaBatchSize,
    lingerMs: settings.kafkaLingerMs,
    bufferEvents: settings.kafkaBufferEvents,
    // Leave the rest of the shutdown grace to closing listeners and the process exit.
    closeTimeoutMs: Math.max(500, Math.floor(settings.shutdownGraceMs / 2)),
    detail: eventDetailOf(settings.eventDetail),
    ...(extras.encode ? { encode: extras.encode } : {}),
    ...(extras.onStats ? { onStats: extras.onStats } : {}),
  });
  // Off by default: then the decisions sink alone, and nothing more per request.
  if (!settings.kafkaAuthentications) return decisions;
  return withAuthentications(decisions, await createAuthenticationsCore(settings, kafka, log));
}
