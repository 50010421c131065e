/** Detector view: consumption and lag, anomalies, blocks and time to block. */
import { SEL, quantile, type DashboardSpec } from '../lib/spec.ts';

const RI = '$__rate_interval';
const rate = (metric: string, match = '') => `rate(${metric}{${SEL}${match ? `, ${match}` : ''}}[${RI}])`;
const q = (p: number, metric: string) => quantile(p, rate(`${metric}_bucket`));

export const detectorView: DashboardSpec = {
  file: 'palisade-detector.json',
  uid: 'palisade-detector',
  title: 'Palisade / Detector',
  description: 'The anomaly detector: decision stream consumption and lag, anomalies, blocks fed back to the sidecars, time to block.',
  tags: ['palisade', 'detector'],
  variableMetric: 'palisade_detector_events_consumed_total',
  rows: [
    {
      title: 'Stream',
      panels: [
        { title: 'Events consumed per second', description: 'Decision events read from the decisions topic.', kind: 'stat', unit: 'ops', w: 6, h: 5, expect: 'detector', queries: [{ expr: `sum(${rate('palisade_detector_events_consumed_total')})`, legend: 'events/s' }] },
        { title: 'Consumer lag', description: 'Events not yet processed, summed over assigned partitions.', kind: 'stat', unit: 'short', w: 6, h: 5, expect: 'detector', thresholds: [[1000, 'orange'], [10000, 'red']], queries: [{ expr: `sum(palisade_detector_consumer_lag_events{${SEL}})`, legend: 'lag' }] },
        { title: 'Clients tracked', description: 'Clients with a baseline.', kind: 'stat', unit: 'short', w: 6, h: 5, expect: 'detector', queries: [{ expr: `sum(palisade_detector_clients_tracked{${SEL}})`, legend: 'clients' }] },
        { title: 'Time to block p95', description: 'p95 from the decision event that tipped a detection to the block record (target: under 2 s).', kind: 'stat', unit: 's', w: 6, h: 5, expect: 'detector-block', thresholds: [[1, 'orange'], [2, 'red']], queries: [{ expr: q(0.95, 'palisade_detector_event_to_block_seconds'), legend: 'p95' }] },
        { title: 'Consumer lag by partition', description: 'Lag per assigned partition of the decisions topic.', kind: 'timeseries', unit: 'short', expect: 'detector', queries: [{ expr: `max by (partition) (palisade_detector_consumer_lag_events{${SEL}})`, legend: 'partition {{partition}}' }] },
        {
          title: 'Events consumed and skipped',
          description: 'Events processed per second, and events that could not be parsed.',
          kind: 'timeseries',
          unit: 'ops',
          expect: 'detector',
          queries: [
            { expr: `sum by (instance) (${rate('palisade_detector_events_consumed_total')})`, legend: 'consumed {{instance}}' },
            { expr: `sum by (instance) (${rate('palisade_detector_events_invalid_total')})`, legend: 'invalid {{instance}}' },
          ],
        },
      ],
    },
    {
      title: 'Detections',
      panels: [
        { title: 'Anomalies by detection and severity', description: 'Anomalies raised per second (detections with none in the interval are left out).', kind: 'timeseries', unit: 'ops', stack: true, expect: 'detector-anomaly', queries: [{ expr: `sum by (detection, severity) (${rate('palisade_detector_anomalies_total')}) > 0`, legend: '{{detection}} {{severity}}' }] },
        { title: 'Alerts published', description: 'Alerts sent per channel (Kafka alerts topic, webhook) and result.', kind: 'timeseries', unit: 'ops', expect: 'detector-anomaly', queries: [{ expr: `sum by (channel, result) (${rate('palisade_detector_alerts_published_total')})`, legend: '{{channel}} {{result}}' }] },
      ],
    },
    {
      title: 'Blocks',
      panels: [
        { title: 'Blocks issued by detection', description: 'Block records published to the block-list topic per interval (intervals without blocks are left out).', kind: 'timeseries', unit: 'short', w: 8, expect: 'detector-block', queries: [{ expr: `sum by (detection) (increase(palisade_detector_blocks_issued_total{${SEL}}[${RI}])) > 0`, legend: '{{detection}}' }] },
        {
          title: 'Active and expired blocks',
          description: 'Blocks in force, and blocks that expired per interval.',
          kind: 'timeseries',
          unit: 'short',
          w: 8,
          expect: 'detector',
          queries: [
            { expr: `sum(palisade_detector_blocks_active{${SEL}})`, legend: 'active' },
            { expr: `sum(increase(palisade_detector_blocks_expired_total{${SEL}}[${RI}]))`, legend: 'expired' },
          ],
        },
        {
          title: 'Time from event to block',
          description: 'From the decision event that tipped a detection to the block record: p50, p95, p99.',
          kind: 'timeseries',
          unit: 's',
          w: 8,
          expect: 'detector-block',
          queries: [
            { expr: q(0.5, 'palisade_detector_event_to_block_seconds'), legend: 'p50' },
            { expr: q(0.95, 'palisade_detector_event_to_block_seconds'), legend: 'p95' },
            { expr: q(0.99, 'palisade_detector_event_to_block_seconds'), legend: 'p99' },
          ],
        },
      ],
    },
    {
      // Fleet-wide quotas (docs/quotas.md): the aggregator in the detector process.
      title: 'Quotas',
      panels: [
        {
          title: 'Quota aggregator running',
          description: 'Whether each detector\'s quota aggregator counts the decision stream: 1, or 0 while it restores its counts, after a crash, once stopped (alert PalisadeQuotaAggregatorDown when no detector counts while sidecars have global quotas: they fail open). docs/quotas.md.',
          kind: 'timeseries',
          unit: 'short',
          w: 12,
          expect: 'detector',
          queries: [{ expr: `max by (instance) (palisade_detector_quota_aggregator_running{${SEL}})`, legend: '{{instance}}' }],
        },
        {
          title: 'Quota counts checkpoints',
          description: 'Checkpoints of the quota counts to the counts topic per second, by result: what a restart or a rebalance resumes from, and how other detector instances see this one\'s counts (only errors for 10 minutes: alert PalisadeQuotaCheckpointsFailing).',
          kind: 'timeseries',
          unit: 'ops',
          w: 12,
          expect: 'detector',
          queries: [{ expr: `sum by (instance, result) (${rate('palisade_detector_quota_checkpoints_total')})`, legend: '{{result}} {{instance}}' }],
        },
      ],
    },
    {
      // From the sidecars' status records (palisade fleet status; docs/deploy.md, "Fleet status and drift").
      title: 'Fleet',
      panels: [
        { title: 'Policy hashes per workload', description: 'Distinct policy hashes the live sidecars of each workload run: above 1 is drift (alert PalisadePolicyDrift; palisade fleet status names the pods).', kind: 'timeseries', unit: 'short', w: 12, expect: null, thresholds: [[2, 'red']], queries: [{ expr: `max by (namespace, workload) (palisade_fleet_policy_hashes{${SEL}})`, legend: '{{namespace}}/{{workload}}' }] },
        { title: 'Sidecars behind on the block list', description: 'Live sidecars whose block-list position is behind the furthest sidecar (a block not applied there yet); 0 in steady state.', kind: 'timeseries', unit: 'short', w: 12, expect: null, queries: [{ expr: `max by (namespace, workload) (palisade_fleet_sidecars_behind_blocklist{${SEL}})`, legend: '{{namespace}}/{{workload}}' }] },
        { title: 'Time to enforce across the fleet', description: 'From a detector block being published to the last live sidecar applying it (their status records): p50 and p95.', kind: 'timeseries', unit: 's', w: 8, expect: null, queries: [{ expr: q(0.5, 'palisade_detector_block_to_enforce_seconds'), legend: 'p50' }, { expr: q(0.95, 'palisade_detector_block_to_enforce_seconds'), legend: 'p95' }] },
        { title: 'Live sidecars per workload', description: 'Sidecars with a recent status record, per workload.', kind: 'timeseries', unit: 'short', w: 12, expect: null, queries: [{ expr: `max by (namespace, workload) (palisade_fleet_sidecars{${SEL}})`, legend: '{{namespace}}/{{workload}}' }] },
      ],
    },
    {
      title: 'Health',
      panels: [
        { title: 'Batch processing p99', description: 'Time to process one consumed batch.', kind: 'timeseries', unit: 's', w: 8, expect: 'detector', queries: [{ expr: q(0.99, 'palisade_detector_batch_processing_seconds'), legend: 'p99' }] },
        { title: 'CPU', description: 'CPU time per second per detector instance (100% = one core).', kind: 'timeseries', unit: 'percentunit', w: 8, expect: 'detector', queries: [{ expr: `sum by (instance) (${rate('process_cpu_seconds_total')})`, legend: '{{instance}}' }] },
        { title: 'Memory', description: 'Resident memory per detector instance (baselines live in memory).', kind: 'timeseries', unit: 'bytes', w: 8, expect: 'detector', queries: [{ expr: `sum by (instance) (process_resident_memory_bytes{${SEL}})`, legend: '{{instance}}' }] },
      ],
    },
  ],
};
