/**
 * The optional stream of OCSF Authentication events (class 3002, Logon), for SIEM logon rules
 * (failed logons per user or per source IP): one per request whose authn stage ran, success or
 * failure, on a topic of its own (PALISADE_KAFKA_TOPIC_AUTHENTICATIONS), keyed like the decisions
 * (by client). It is a second sink core beside the decisions one, with its own publisher, queue
 * and spool (<spool dir>/authentications, same size limit), so a slow or failing authentications
 * topic never holds up or drops a decision event. Only built when enabled: when off, the decision
 * sink is the core alone and no request pays anything for it.
 */
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import type { Settings } from '../../../config/settings.ts';
import { palisadeTopics } from '../../../kafka/topics.ts';
import { toOcsfAuthentication } from '../../ocsf/authentication.ts';
import type { DecisionRecord } from '../../record.ts';
import { createPublisher, type Compression } from './publisher.ts';
import { createKafkaSinkCore, type KafkaSink } from './sink.ts';
import { openSpool, parseFsyncPolicy } from './spool.ts';

type AuthSettings = Pick<
  Settings,
  | 'kafkaTopicAuthentications' | 'kafkaTopicDecisions' | 'kafkaTopicBlocklist' | 'kafkaTopicAlerts' | 'kafkaCreateTopics' | 'kafkaTopicPartitions'
  | 'kafkaTopicReplication' | 'kafkaDecisionsRetentionMs' | 'kafkaCompression' | 'kafkaRequestTimeoutMs' | 'kafkaBatchSize' | 'kafkaLingerMs'
  | 'kafkaBufferEvents' | 'spoolDir' | 'spoolMaxBytes' | 'spoolFsync' | 'shutdownGraceMs'
>;

/** True when the request went through authentication (the mapping has an event for it). */
function authenticated(r: DecisionRecord): boolean {
  for (const s of r.stages) if (s.stage === 'authn') return true;
  return false;
}

export async function createAuthenticationsCore(settings: AuthSettings, kafka: Kafka, logger: Logger): Promise<KafkaSink> {
  const log = logger.child({ stream: 'authentications' });
  const topics = palisadeTopics(settings);
  const spool = settings.spoolDir ? await openSpool({ dir: join(settings.spoolDir, 'authentications'), maxBytes: settings.spoolMaxBytes, fsync: parseFsyncPolicy(settings.spoolFsync) }, log) : null;
  const publisher = createPublisher({
    kafka,
    topic: topics.authentications.name,
    ensure: settings.kafkaCreateTopics ? [topics.authentications] : [],
    compression: settings.kafkaCompression as Compression,
    ackTimeoutMs: settings.kafkaRequestTimeoutMs,
    logger: log,
  });
  return createKafkaSinkCore({
    publisher,
    spool,
    logger: log,
    batchSize: settings.kafkaBatchSize,
    lingerMs: settings.kafkaLingerMs,
    bufferEvents: settings.kafkaBufferEvents,
    closeTimeoutMs: Math.max(500, Math.floor(settings.shutdownGraceMs / 2)),
    // Only records that went through authn reach this core (withAuthentications), so there is an event.
    encode: (r) => toOcsfAuthentication(r),
  });
}

/**
 * The decisions sink plus the authentications one. Its stats are the decisions', with the
 * authentications' under streams.authentications (the sidecar watches them as the sink
 * "kafka-authentications" in the decision sink metrics).
 */
export function withAuthentications(decisions: KafkaSink, authentications: KafkaSink): KafkaSink {
  return {
    write(r) {
      decisions.write(r);
      if (authenticated(r)) authentications.write(r);
    },
    async flush() {
      await Promise.all([decisions.flush(), authentications.flush()]);
    },
    async close() {
      await Promise.all([decisions.close(), authentications.close()]);
    },
    stats: () => ({ ...decisions.stats(), streams: { authentications: authentications.stats() } }),
  };
}
