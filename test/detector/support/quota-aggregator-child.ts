/**
 * A quota aggregator alone in a process of its own, for the test that kills it (SIGKILL: no last
 * checkpoint, no leaving the group). Argument: JSON { env, topics, groupId, checkpointMs }.
 * Prints its stats as one JSON line every 50 ms.
 */
import { PRODUCER_OPTIONS } from '../../../detectors/kafka/outputs.ts';
import { startQuotaAggregator } from '../../../detectors/quota/aggregator.ts';
import { loadSettings } from '../../../src/config/settings.ts';
import { createKafkaClient } from '../../../src/kafka/client.ts';
import { createLogger } from '../../../src/log/logger.ts';

const arg = JSON.parse(process.argv[2] ?? '{}') as { env: Record<string, string>; decisions: string; quotas: string; counts: string; groupId: string; checkpointMs: number };
const logger = createLogger({ level: 'silent' });
const kafka = createKafkaClient(loadSettings(arg.env), logger);
const producer = kafka.producer(PRODUCER_OPTIONS);
await producer.connect();
const agg = startQuotaAggregator({ kafka, producer, decisionsTopic: arg.decisions, quotasTopic: arg.quotas, countsTopic: arg.counts, groupId: arg.groupId, logger, fairShare: false, replayMs: 0, checkpointMs: arg.checkpointMs });
await agg.joined;
setInterval(() => process.stdout.write(`${JSON.stringify(agg.stats())}\n`), 50);
