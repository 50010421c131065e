/**
 * Palisade's Kafka topics and their settings, in one place for every process
 * (the sidecar's decision producer, the detector): which topics exist, how
 * they are cleaned up, and creating the missing ones.
 *
 *   decisions       cleanup.policy=delete, retention.ms (7 days by default): an event stream
 *   alerts          cleanup.policy=delete, 30 days: fewer, longer-lived events
 *   authentications cleanup.policy=delete, the decisions' retention: OCSF Authentication events
 *                   (optional, PALISADE_KAFKA_AUTHENTICATIONS), for SIEM logon rules
 *   blocklist       cleanup.policy=compact: the latest record per block target is the state
 *   quotas          cleanup.policy=compact: the latest over/near-quota record per key (global quotas)
 *   quota counts    "<quotas>.counts", cleanup.policy=compact: the detector's quota aggregator's
 *                   per-partition counts (its checkpoints, read whole by every instance)
 *   detector-state  cleanup.policy=compact, same partition count as decisions (co-partitioned:
 *                   the detector owning decisions partition p checkpoints into state partition p)
 *
 * Existing topics are never altered (an operator may have tuned them); a
 * cleanup policy that differs from the one Palisade needs is logged as a warning.
 */
import kafkajs, { type Admin, type ITopicConfig } from 'kafkajs';
import type { Logger } from 'pino';

export const DEFAULT_TOPICS = {
  decisions: 'palisade.decisions.v1',
  blocklist: 'palisade.blocklist.v1',
  quotas: 'palisade.quotas.v1',
  /** Named after the quotas topic: `${quotas}.counts`. */
  quotaCounts: 'palisade.quotas.v1.counts',
  alerts: 'palisade.alerts.v1',
  authentications: 'palisade.authentications.v1',
  detectorState: 'palisade.detector-state.v1',
  sidecars: 'palisade.sidecars.v1',
} as const;

export type TopicRole = keyof typeof DEFAULT_TOPICS;

export interface TopicSpec {
  readonly role: TopicRole;
  readonly name: string;
  readonly partitions: number;
  /** Wanted replicas; capped at the number of brokers when created. */
  readonly replicationFactor: number;
  readonly config: Readonly<Record<string, string>>;
}

/** The settings topics read (a subset of src/config/settings.ts). */
export interface TopicSettings {
  readonly kafkaTopicDecisions: string;
  readonly kafkaTopicBlocklist: string;
  readonly kafkaTopicAlerts: string;
  /** Default palisade.quotas.v1. */
  readonly kafkaTopicQuotas?: string;
  /** Optional: the sidecar's setting; other processes never publish there. */
  readonly kafkaTopicAuthentications?: string;
  readonly kafkaTopicPartitions: number;
  readonly kafkaTopicReplication: number;
  readonly kafkaDecisionsRetentionMs: number;
  /** Not a sidecar setting; the detector passes its own. */
  readonly kafkaTopicDetectorState?: string;
  /** The sidecars' status records (src/fleet/); the default when absent. */
  readonly kafkaTopicSidecars?: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** Every Palisade topic with the settings it is created with. */
export function palisadeTopics(s: TopicSettings): Readonly<Record<TopicRole, TopicSpec>> {
  const rf = s.kafkaTopicReplication;
  const partitions = s.kafkaTopicPartitions;
  return {
    decisions: {
      role: 'decisions',
      name: s.kafkaTopicDecisions,
      partitions,
      replicationFactor: rf,
      config: { 'cleanup.policy': 'delete', 'retention.ms': String(s.kafkaDecisionsRetentionMs) },
    },
    alerts: {
      role: 'alerts',
      name: s.kafkaTopicAlerts,
      partitions,
      replicationFactor: rf,
      config: { 'cleanup.policy': 'delete', 'retention.ms': String(30 * DAY_MS) },
    },
    authentications: {
      role: 'authentications',
      name: s.kafkaTopicAuthentications ?? DEFAULT_TOPICS.authentications,
      partitions,
      replicationFactor: rf,
      // Derived from the decisions, kept as long as they are.
      config: { 'cleanup.policy': 'delete', 'retention.ms': String(s.kafkaDecisionsRetentionMs) },
    },
    blocklist: {
      role: 'blocklist',
      name: s.kafkaTopicBlocklist,
      // One partition: every sidecar reads all of it, and one order for block/unblock is simpler.
      partitions: 1,
      replicationFactor: rf,
      // Unblocks are tombstones; keep them a day so a sidecar that was offline still sees them.
      config: { 'cleanup.policy': 'compact', 'delete.retention.ms': String(DAY_MS), 'min.cleanable.dirty.ratio': '0.1' },
    },
    sidecars: {
      role: 'sidecars',
      name: s.kafkaTopicSidecars ?? DEFAULT_TOPICS.sidecars,
      // One partition: small records, read whole by palisade fleet status.
      partitions: 1,
      replicationFactor: rf,
      // Latest record per pod; a tombstone at clean shutdown; a pod that died without one
      // ages out with its last record (its segment deleted after retention.ms).
      config: { 'cleanup.policy': 'compact,delete', 'retention.ms': String(7 * DAY_MS), 'delete.retention.ms': String(DAY_MS), 'min.cleanable.dirty.ratio': '0.1' },
    },
    quotas: {
      role: 'quotas',
      name: s.kafkaTopicQuotas ?? DEFAULT_TOPICS.quotas,
      // One partition, like the block list: every sidecar reads all of it.
      partitions: 1,
      replicationFactor: rf,
      // Entries end by themselves at the window's end; the aggregator's tombstones then let compaction drop them.
      config: { 'cleanup.policy': 'compact', 'delete.retention.ms': String(DAY_MS), 'min.cleanable.dirty.ratio': '0.1' },
    },
    quotaCounts: {
      role: 'quotaCounts',
      // Named after the quota topic, so that whoever names that one (per environment, per test) names both.
      name: `${s.kafkaTopicQuotas ?? DEFAULT_TOPICS.quotas}.counts`,
      // One partition: every aggregator instance reads all of it (a few records per key and window).
      partitions: 1,
      replicationFactor: rf,
      // A window's counts are tombstoned when it ends.
      config: { 'cleanup.policy': 'compact', 'delete.retention.ms': String(DAY_MS), 'min.cleanable.dirty.ratio': '0.1' },
    },
    detectorState: {
      role: 'detectorState',
      name: s.kafkaTopicDetectorState ?? DEFAULT_TOPICS.detectorState,
      partitions,
      replicationFactor: rf,
      config: { 'cleanup.policy': 'compact', 'delete.retention.ms': String(DAY_MS) },
    },
  };
}

export interface EnsureResult {
  readonly created: readonly string[];
  readonly existing: readonly string[];
}

/**
 * Creates the topics that do not exist yet (with their settings) and checks
 * the cleanup policy of those that do. Safe to run from many processes at once:
 * a topic another process created meanwhile counts as existing.
 */
export async function ensureTopics(admin: Admin, specs: readonly TopicSpec[], logger: Logger): Promise<EnsureResult> {
  const present = new Set(await admin.listTopics());
  const missing = specs.filter((t) => !present.has(t.name));
  const existing = specs.filter((t) => present.has(t.name)).map((t) => t.name);
  const created: string[] = [];
  if (missing.length > 0) {
    const { brokers } = await admin.describeCluster();
    const topics: ITopicConfig[] = missing.map((t) => {
      const replicationFactor = Math.max(1, Math.min(t.replicationFactor, brokers.length));
      if (replicationFactor < t.replicationFactor) logger.warn({ topic: t.name, wanted: t.replicationFactor, brokers: brokers.length }, 'fewer brokers than the replication factor; topic created with fewer replicas');
      // With acks=all, min.insync.replicas decides how many copies an acknowledged event has.
      const config = { ...t.config, 'min.insync.replicas': String(Math.min(2, replicationFactor)) };
      return { topic: t.name, numPartitions: t.partitions, replicationFactor, configEntries: Object.entries(config).map(([name, value]) => ({ name, value })) };
    });
    // Leaders are awaited here, not by kafkajs: its waitForLeaders retries only LEADER_NOT_AVAILABLE,
    // and a busy broker answers "This server does not host this topic-partition" for a topic it has
    // just created, which made createTopics throw for topics that did get created (seen in CI).
    const made = await admin.createTopics({ topics, waitForLeaders: false });
    for (const t of missing) {
      if (made) created.push(t.name);
      else existing.push(t.name); // created by another process meanwhile
    }
    if (made) {
      await awaitLeaders(admin, created, logger);
      logger.info({ topics: created }, 'kafka topics created');
    }
  }
  if (existing.length > 0) await warnOnCleanupPolicy(admin, specs.filter((t) => existing.includes(t.name)), logger);
  return { created, existing };
}

/** Longest wait for the leaders of newly created topics, milliseconds; past it producers retry on their own. */
const LEADER_WAIT_MS = 15_000;

/**
 * Waits until every partition of `names` has a leader, retrying the errors a
 * broker gives while it propagates new topics (they are retriable); gives up
 * with a warning after `timeoutMs` (a producer's own retries take over then).
 */
export async function awaitLeaders(admin: Pick<Admin, 'fetchTopicMetadata'>, names: readonly string[], logger: Logger, timeoutMs = LEADER_WAIT_MS): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: [...names] });
      if (topics.length === names.length && topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) return;
      last = 'a partition has no leader yet';
    } catch (err) {
      if ((err as { retriable?: boolean }).retriable !== true) throw err;
      last = (err as Error).message;
    }
    if (Date.now() >= end) {
      logger.warn({ topics: names, last, waitedMs: timeoutMs }, 'kafka topics created, but not every partition has a leader yet; producers will retry');
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

// kafkajs is CommonJS and Node's named-export detection stops before these; take them from the default export.
const { ConfigResourceTypes } = kafkajs;

async function warnOnCleanupPolicy(admin: Admin, specs: readonly TopicSpec[], logger: Logger): Promise<void> {
  try {
    const res = await admin.describeConfigs({
      includeSynonyms: false,
      resources: specs.map((t) => ({ type: ConfigResourceTypes.TOPIC, name: t.name, configNames: ['cleanup.policy'] })),
    });
    for (const r of res.resources) {
      const want = specs.find((t) => t.name === r.resourceName)?.config['cleanup.policy'];
      const have = r.configEntries.find((e) => e.configName === 'cleanup.policy')?.configValue;
      if (want && have && !have.split(',').includes(want)) logger.warn({ topic: r.resourceName, cleanupPolicy: have, expected: want }, 'kafka topic has an unexpected cleanup.policy');
    }
  } catch (err) {
    // Describing needs DESCRIBE_CONFIGS, which a producer-only ACL may not grant; the check is advisory.
    logger.debug({ err: (err as Error).message }, 'could not describe topic configs');
  }
}
