/**
 * Prometheus metrics of the detector (prom-client), beside the code that updates them. The
 * sidecar's metrics live in src/telemetry/; the two products run in separate processes, each with
 * its own registry, and share no metric.
 *
 *   const d = createDetectorMetrics(registry, { detections: DETECTION_IDS, severities: SEVERITIES });
 *                                                // the ids and severities (detectors/config.ts)
 *                                                // start at zero. Also registers the standard
 *                                                // process_* and nodejs_* metrics on that registry
 *                                                // (pass { processMetrics: false } to skip, e.g.
 *                                                // two sets in one test process).
 *   d.eventsConsumed.inc(n)
 *   d.consumerLag.set({ partition }, events)     // partition as a string, e.g. '3'
 *   d.clientsTracked.set(n)
 *   d.anomalies.inc({ detection, severity })     // detection: the detection's id from the detector config
 *   d.alertsPublished.inc({ channel, result })   // channel: 'kafka' | 'webhook' | 'alertmanager'; result: 'ok' | 'error'
 *   d.blocksIssued.inc({ detection })
 *   d.blocksSuppressed.inc({ reason })           // a block the feedback policy asked for, not issued:
 *                                                //   guard | block-rate-cap | blocked-share-cap |
 *                                                //   manual-unblock | already-blocked
 *   d.guardActive.set(0 | 1)                     // the blast-radius guard holds
 *   d.failingClients.set(fraction)               // failing / active clients at the guard's last count
 *   d.blocksExpired.inc()
 *   d.blocksActive.set(n)
 *   d.quotaAggregatorRunning.set(0 | 1)          // the quota aggregator's consumer runs (global quotas counted)
 *   d.quotaCheckpoints.inc({ result })           // quota counts checkpoints to the counts topic
 *   d.eventToBlock.observe(seconds)              // decision event time -> block record published
 *   d.eventProcessing.observe(seconds)           // per consumed batch, for saturation
 *   d.checkpoints.inc({ result })                // baseline checkpoints to the compacted topic
 *
 * Label values are always bounded: detection id, severity, partition, channel, result. Never a
 * client id, IP, token or path. Creating the metrics has no side effect beyond registering them.
 */
import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from 'prom-client';
import { SUPPRESSION_REASONS } from './feedback/policy.ts';

/** Decision event to block published, seconds (target: under 2 s). */
export const TIME_TO_BLOCK_BUCKETS = [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30, 60];
/** Processing of one consumed batch, seconds. */
export const BATCH_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export interface DetectorMetricsOptions {
  /** Register process_* and nodejs_* default metrics on the registry (default true). */
  readonly processMetrics?: boolean;
  /**
   * Detection ids and severities to start at zero (detectors/config.ts DETECTION_IDS, SEVERITIES):
   * a counter series born with its first increment loses that increment to rate()/increase(),
   * so the first block of a detection would not show on the dashboard.
   */
  readonly detections?: readonly string[];
  readonly severities?: readonly string[];
}

export interface DetectorMetrics {
  readonly registry: Registry;
  readonly eventsConsumed: Counter;
  readonly eventsInvalid: Counter;
  readonly consumerLag: Gauge<'partition'>;
  readonly clientsTracked: Gauge;
  readonly anomalies: Counter<'detection' | 'severity'>;
  readonly alertsPublished: Counter<'channel' | 'result'>;
  readonly blocksIssued: Counter<'detection'>;
  readonly blocksSuppressed: Counter<'reason'>;
  readonly guardActive: Gauge;
  readonly failingClients: Gauge;
  readonly blocksExpired: Counter;
  readonly blocksActive: Gauge;
  readonly quotaAggregatorRunning: Gauge;
  readonly quotaCheckpoints: Counter<'result'>;
  readonly eventToBlock: Histogram;
  readonly eventProcessing: Histogram;
  readonly checkpoints: Counter<'result'>;
  /** The fleet, from the sidecars' status records (set by src/fleet/watch.ts, wired by `palisade detector`). */
  readonly fleetSidecars: Gauge<'namespace' | 'workload'>;
  readonly fleetPolicyHashes: Gauge<'namespace' | 'workload'>;
  readonly fleetBehindBlocklist: Gauge<'namespace' | 'workload'>;
  /** Time from a detector block's addedAt until every live sidecar applied it (src/fleet/watch.ts). */
  readonly blockToEnforce: Histogram;
}

function counter<T extends string>(registry: Registry, name: string, help: string, labelNames: readonly T[] = []): Counter<T> {
  return new Counter<T>({ name, help, labelNames, registers: [registry] });
}
function gauge<T extends string>(registry: Registry, name: string, help: string, labelNames: readonly T[] = []): Gauge<T> {
  return new Gauge<T>({ name, help, labelNames, registers: [registry] });
}
function histogram<T extends string>(registry: Registry, name: string, help: string, buckets: readonly number[], labelNames: readonly T[] = []): Histogram<T> {
  return new Histogram<T>({ name, help, labelNames, buckets: [...buckets], registers: [registry] });
}

/** Creates and registers every detector metric on `registry`. */
export function createDetectorMetrics(registry: Registry, options: DetectorMetricsOptions = {}): DetectorMetrics {
  const r = registry;
  const m: DetectorMetrics = {
    registry: r,
    eventsConsumed: counter(r, 'palisade_detector_events_consumed_total', 'Decision events consumed from the decisions topic.'),
    eventsInvalid: counter(r, 'palisade_detector_events_invalid_total', 'Consumed events that could not be parsed and were skipped.'),
    consumerLag: gauge(r, 'palisade_detector_consumer_lag_events', 'Events between the partition\'s high watermark and the detector\'s position, by assigned partition.', ['partition'] as const),
    clientsTracked: gauge(r, 'palisade_detector_clients_tracked', 'Clients with a baseline held by this detector instance.'),
    anomalies: counter(r, 'palisade_detector_anomalies_total', 'Anomalies raised, by detection id and severity.', ['detection', 'severity'] as const),
    alertsPublished: counter(r, 'palisade_detector_alerts_published_total', 'Alerts sent, by channel (kafka/webhook/alertmanager; one per POST to Alertmanager) and result (ok/error).', ['channel', 'result'] as const),
    blocksIssued: counter(r, 'palisade_detector_blocks_issued_total', 'Block records published to the block-list topic, by detection id.', ['detection'] as const),
    blocksSuppressed: counter(r, 'palisade_detector_blocks_suppressed_total', 'Blocks the feedback policy asked for that were not issued (the anomaly was alerted instead), by reason: guard (blast-radius guard holding), block-rate-cap, blocked-share-cap, manual-unblock, already-blocked.', ['reason'] as const),
    guardActive: gauge(r, 'palisade_detector_guard_active', 'Whether the blast-radius guard holds (1): automatic blocks of failure detections are suspended because many clients fail at once.'),
    failingClients: gauge(r, 'palisade_detector_failing_clients_ratio', 'Share of the active clients that are failing (failed requests at least guard.clientFailureShare of their requests in the medium window), at the guard\'s last count, fraction.'),
    blocksExpired: counter(r, 'palisade_detector_blocks_expired_total', 'Blocks that reached their expiry and were removed.'),
    blocksActive: gauge(r, 'palisade_detector_blocks_active', 'Blocks issued by the detector and not yet expired or removed.'),
    quotaAggregatorRunning: gauge(r, 'palisade_detector_quota_aggregator_running', 'Whether the quota aggregator counts the decision stream (1): without it, fleet-wide quotas (rate-limit rules with scope: global) are not enforced (they fail open).'),
    quotaCheckpoints: counter(r, 'palisade_detector_quota_checkpoints_total', 'Quota counts checkpoints (the counts changed since the last one, written to the quota counts topic, then the offsets they cover committed), by result (ok/error): what a restart or a rebalance resumes from, and how other instances see this one\'s counts.', ['result'] as const),
    eventToBlock: histogram(r, 'palisade_detector_event_to_block_seconds', 'Time from the decision event that tipped a detection to the block record being published, seconds.', TIME_TO_BLOCK_BUCKETS),
    eventProcessing: histogram(r, 'palisade_detector_batch_processing_seconds', 'Time to process one consumed batch, seconds.', BATCH_BUCKETS),
    checkpoints: counter(r, 'palisade_detector_checkpoints_total', 'Baseline checkpoints written to the state topic, by result (ok/error).', ['result'] as const),
    fleetSidecars: gauge(r, 'palisade_fleet_sidecars', 'Live sidecars per workload (a status record within 3 publish intervals, at least 15 s), from the sidecars topic.', ['namespace', 'workload'] as const),
    fleetPolicyHashes: gauge(r, 'palisade_fleet_policy_hashes', 'Distinct policy hashes the live sidecars of a workload run: above 1 is drift.', ['namespace', 'workload'] as const),
    blockToEnforce: histogram(r, 'palisade_detector_block_to_enforce_seconds', 'Time from a detector block being published to the last live sidecar applying it (from the sidecars\' status records), seconds: the fleet-wide time to enforce.', TIME_TO_BLOCK_BUCKETS),
    fleetBehindBlocklist: gauge(r, 'palisade_fleet_sidecars_behind_blocklist', 'Live sidecars of a workload whose block-list position is behind the furthest sidecar on the same topic.', ['namespace', 'workload'] as const),
  };
  for (const detection of options.detections ?? []) {
    m.blocksIssued.inc({ detection }, 0);
    for (const severity of options.severities ?? []) m.anomalies.inc({ detection, severity }, 0);
  }
  for (const channel of ['kafka', 'webhook', 'alertmanager'] as const) for (const result of ['ok', 'error'] as const) m.alertsPublished.inc({ channel, result }, 0);
  for (const result of ['ok', 'error'] as const) {
    m.checkpoints.inc({ result }, 0);
    m.quotaCheckpoints.inc({ result }, 0);
  }
  for (const reason of SUPPRESSION_REASONS) m.blocksSuppressed.inc({ reason }, 0);
  // Standard names (process_cpu_seconds_total, nodejs_eventloop_lag_seconds...), as the sidecar
  // does: Node/process dashboards know them, and the scrape job label tells the two apart.
  if (options.processMetrics !== false) collectDefaultMetrics({ register: r });
  return m;
}
