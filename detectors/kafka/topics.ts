/**
 * The detector's topics: their names (from the Kafka settings and config.kafka.stateTopic), the
 * missing ones created when allowed, and the state topic checked to be co-partitioned with the
 * decisions topic (a client's checkpoint goes to the partition its decisions arrive on).
 */
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { PalisadeError } from '../../src/errors/codes.ts';
import { ensureTopics, palisadeTopics, type TopicSettings } from '../../src/kafka/topics.ts';

export interface DetectorTopics {
  readonly decisions: string;
  readonly state: string;
  readonly blocklist: string;
  readonly alerts: string;
  readonly quotas: string;
  /** The quota aggregator's per-partition counts (its checkpoints): "<quotas topic>.counts". */
  readonly quotaCounts: string;
}

export async function prepareTopics(kafka: Kafka, settings: TopicSettings & { readonly kafkaCreateTopics: boolean }, stateTopic: string, log: Logger): Promise<DetectorTopics> {
  const topics = palisadeTopics({ ...settings, kafkaTopicDetectorState: stateTopic });
  const names: DetectorTopics = { decisions: topics.decisions.name, state: topics.detectorState.name, blocklist: topics.blocklist.name, alerts: topics.alerts.name, quotas: topics.quotas.name, quotaCounts: topics.quotaCounts.name };
  const admin = kafka.admin();
  await admin.connect();
  try {
    if (settings.kafkaCreateTopics) await ensureTopics(admin, [topics.decisions, topics.blocklist, topics.alerts, topics.detectorState, topics.quotas, topics.quotaCounts], log);
    const meta = await admin.fetchTopicMetadata({ topics: [names.decisions, names.state] });
    const count = (name: string) => meta.topics.find((t) => t.name === name)?.partitions.length ?? 0;
    if (count(names.state) < count(names.decisions)) {
      throw new PalisadeError('CONFIG_INVALID', `detector state topic ${names.state} has ${count(names.state)} partitions but ${names.decisions} has ${count(names.decisions)}: it needs at least as many (co-partitioned checkpoints)`);
    }
  } finally {
    await admin.disconnect();
  }
  return names;
}
