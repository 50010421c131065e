/** config.kafka: the detector's own Kafka runtime (the shared topics come from PALISADE_KAFKA_*). */
import { bool, int, obj, str } from './kit.ts';

export const kafkaSchema = obj('The detector\'s Kafka runtime (brokers, TLS, SASL and the decisions/blocklist/alerts topics come from the PALISADE_KAFKA_* settings).', {
  groupId: str('palisade-detector', 'Consumer group on the decisions topic; instances in one group share the partitions. Default "palisade-detector".', 1),
  stateTopic: str('palisade.detector-state.v1', 'Compacted topic of per-client baselines (checkpoints), restored on partition assignment. Default "palisade.detector-state.v1".', 1),
  checkpointIntervalMs: int(5000, 100, 'How often changed baselines are written to the state topic and consumer offsets committed, milliseconds. Default 5000.'),
  maxWaitMs: int(100, 1, 'Longest a fetch waits for new events on the broker, milliseconds (latency of detection). Default 100.'),
  expirySweepMs: int(5000, 100, 'How often expired blocks are tombstoned on the block-list topic, milliseconds. Default 5000.'),
  quotaReplayMs: int(120000, 0, 'Fleet-wide quotas: a decisions partition the quota aggregator\'s group has never checkpointed (its first start) is counted from the decisions of this long ago; windows up to this long are then counted exactly, longer ones from there (undercounted: fails open). Restarts and rebalances resume from the checkpoints instead, milliseconds. Default 120000.'),
  quotaCheckpointMs: int(1000, 100, 'Fleet-wide quotas: how often each quota aggregator instance publishes its changed counts to the counts topic ("<quotas topic>.counts") and commits its offsets: what a restart or a rebalance resumes from, and how old the counts of other instances are when a key spans them, milliseconds. Default 1000.'),
  quotaFairShare: bool(true, 'Fleet-wide quotas: once a key has used 90% of its quota, give each sidecar its share of what is left (bounds the overshoot; docs/quotas.md). false: only "over quota" records. Default true.'),
});
