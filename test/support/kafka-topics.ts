/**
 * Creates a test topic and waits until every partition has a leader, the way the project's own
 * ensureTopics does: kafkajs's `waitForLeaders` gives up on "This server does not host this
 * topic-partition", which a busy broker answers for a topic it has just created.
 */
import type { Admin, ITopicConfig } from 'kafkajs';
import { awaitLeaders } from '../../src/kafka/topics.ts';
import { createLogger } from '../../src/log/logger.ts';

export async function createTopic(admin: Admin, topic: ITopicConfig): Promise<void> {
  await admin.createTopics({ topics: [topic], waitForLeaders: false });
  await awaitLeaders(admin, [topic.topic], createLogger({ level: 'silent' }));
}
