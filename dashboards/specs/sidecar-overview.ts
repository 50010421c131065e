/** Sidecar overview: traffic, verdicts, latency percentiles, errors, saturation, policy. */
import { SEL, quantile, ratio, type DashboardSpec } from '../lib/spec.ts';

const RI = '$__rate_interval';
const rate = (metric: string, match = '') => `rate(${metric}{${SEL}${match ? `, ${match}` : ''}}[${RI}])`;
const q = (p: number, metric: string, by = '') => quantile(p, rate(`${metric}_bucket`), by);
const SERVER_ERROR_CODES = 'UPSTREAM_.*|INTERNAL_ERROR|POLICY_UNAVAILABLE|AUTHN_JWKS_UNAVAILABLE|AUTHN_INTROSPECTION_UNAVAILABLE';

export const sidecarOverview: DashboardSpec = {
  file: 'palisade-sidecar-overview.json',
  uid: 'palisade-sidecar-overview',
  title: 'Palisade / Sidecar overview',
  description: 'Traffic, verdicts, latency, errors and saturation of the Palisade sidecars.',
  tags: ['palisade', 'sidecar'],
  variableMetric: 'palisade_requests_total',
  rows: [
    {
      title: 'Traffic',
      panels: [
        { title: 'Requests per second', description: 'Every request decided by the sidecars, allowed or denied.', kind: 'stat', unit: 'reqps', w: 6, h: 5, expect: 'traffic', queries: [{ expr: `sum(${rate('palisade_requests_total')})`, legend: 'requests/s' }] },
        { title: 'Deny ratio', description: 'Share of requests denied (any stage, any code).', kind: 'stat', unit: 'percentunit', w: 6, h: 5, expect: 'deny', thresholds: [[0.05, 'orange'], [0.2, 'red']], queries: [{ expr: ratio(`sum(${rate('palisade_requests_total', 'verdict="deny"')})`, `sum(${rate('palisade_requests_total')})`), legend: 'denied' }] },
        { title: 'Latency p99', description: 'p99 of the total request time, upstream included.', kind: 'stat', unit: 's', w: 6, h: 5, expect: 'traffic', queries: [{ expr: q(0.99, 'palisade_request_duration_seconds'), legend: 'p99' }] },
        { title: 'Sidecar overhead p99', description: 'p99 of the time the sidecar itself adds (total minus upstream). The latency budget of the sidecar.', kind: 'stat', unit: 's', w: 6, h: 5, expect: 'traffic', thresholds: [[0.01, 'orange'], [0.025, 'red']], queries: [{ expr: q(0.99, 'palisade_sidecar_overhead_seconds'), legend: 'p99' }] },
        { title: 'Requests by verdict', description: 'Allowed and denied requests per second.', kind: 'timeseries', unit: 'reqps', stack: true, expect: 'traffic', queries: [{ expr: `sum by (verdict) (${rate('palisade_requests_total')})`, legend: '{{verdict}}' }] },
        { title: 'Requests by route', description: 'Requests per second per route template of the policy ("(none)": no route matched).', kind: 'timeseries', unit: 'reqps', expect: 'traffic', queries: [{ expr: `sum by (route) (${rate('palisade_requests_total')})`, legend: '{{route}}' }] },
        { title: 'Decisions by code', description: 'Requests per second by stable code (ALLOWED or the deny reason).', kind: 'timeseries', unit: 'reqps', w: 24, expect: 'traffic', queries: [{ expr: `sum by (code) (${rate('palisade_requests_total')})`, legend: '{{code}}' }] },
      ],
    },
    {
      title: 'Latency',
      panels: [
        {
          title: 'Request latency',
          description: 'Total time in the sidecar, upstream included: p50, p90, p99.',
          kind: 'timeseries',
          unit: 's',
          expect: 'traffic',
          queries: [
            { expr: q(0.5, 'palisade_request_duration_seconds'), legend: 'p50' },
            { expr: q(0.9, 'palisade_request_duration_seconds'), legend: 'p90' },
            { expr: q(0.99, 'palisade_request_duration_seconds'), legend: 'p99' },
          ],
        },
        {
          title: 'Sidecar overhead',
          description: 'Time the sidecar adds (total minus upstream), by verdict: p50 and p99.',
          kind: 'timeseries',
          unit: 's',
          expect: 'traffic',
          queries: [
            { expr: q(0.5, 'palisade_sidecar_overhead_seconds', 'verdict'), legend: 'p50 {{verdict}}' },
            { expr: q(0.99, 'palisade_sidecar_overhead_seconds', 'verdict'), legend: 'p99 {{verdict}}' },
          ],
        },
        { title: 'Stage latency p99', description: 'p99 time spent in each pipeline stage.', kind: 'timeseries', unit: 's', expect: 'traffic', queries: [{ expr: q(0.99, 'palisade_stage_duration_seconds', 'stage'), legend: '{{stage}}' }] },
        { title: 'Upstream latency p99 by route', description: 'Upstream time (connect to last byte) of forwarded requests.', kind: 'timeseries', unit: 's', expect: 'upstream', queries: [{ expr: q(0.99, 'palisade_upstream_duration_seconds', 'route'), legend: '{{route}}' }] },
      ],
    },
    {
      title: 'Errors',
      panels: [
        { title: 'Upstream errors by code', description: 'Forwarded requests that failed at the upstream: unreachable, bad response, unavailable, timeout.', kind: 'timeseries', unit: 'reqps', w: 8, expect: 'upstream-error', queries: [{ expr: `sum by (code) (${rate('palisade_upstream_errors_total')})`, legend: '{{code}}' }] },
        { title: 'Server errors (5xx) by code', description: 'Requests answered with a 5xx: upstream failures, JWKS or introspection outages (fail closed), no policy, internal errors.', kind: 'timeseries', unit: 'reqps', w: 8, expect: 'upstream-error', queries: [{ expr: `sum by (code) (${rate('palisade_requests_total', `code=~"${SERVER_ERROR_CODES}"`)})`, legend: '{{code}}' }] },
        { title: 'TLS handshake failures by reason', description: 'mTLS handshakes refused: no client certificate, unknown CA, expired certificate, protocol version...', kind: 'timeseries', unit: 'ops', w: 8, expect: 'tls-failure', queries: [{ expr: `sum by (reason) (${rate('palisade_tls_handshake_failures_total')})`, legend: '{{reason}}' }] },
      ],
    },
    {
      title: 'Saturation',
      panels: [
        { title: 'Requests in flight', description: 'Requests being processed right now, per sidecar.', kind: 'timeseries', unit: 'short', w: 8, expect: 'process', queries: [{ expr: `sum by (instance) (palisade_requests_in_flight{${SEL}})`, legend: '{{instance}}' }] },
        {
          title: 'Decision sink buffer',
          description: 'Decision events waiting in memory, and the buffer capacity.',
          kind: 'timeseries',
          unit: 'short',
          w: 8,
          expect: 'sink',
          queries: [
            { expr: `sum by (sink) (palisade_decision_buffer_events{${SEL}})`, legend: '{{sink}} buffered' },
            { expr: `sum by (sink) (palisade_decision_buffer_capacity_events{${SEL}})`, legend: '{{sink}} capacity' },
          ],
        },
        { title: 'Decision spool on disk', description: 'Bytes of decision events spooled to disk while the broker is unreachable or slow.', kind: 'timeseries', unit: 'bytes', w: 8, expect: 'spool', queries: [{ expr: `sum by (sink) (palisade_decision_spool_bytes{${SEL}})`, legend: '{{sink}}' }] },
        {
          title: 'Decision events published and dropped',
          description: 'Events delivered per second, and events lost for good (must stay zero).',
          kind: 'timeseries',
          unit: 'ops',
          w: 8,
          expect: 'sink',
          queries: [
            { expr: `sum by (sink) (${rate('palisade_decision_events_published_total')})`, legend: '{{sink}} published' },
            { expr: `sum by (sink) (${rate('palisade_decision_events_dropped_total')})`, legend: '{{sink}} dropped' },
          ],
        },
        { title: 'CPU', description: 'CPU time per second per sidecar (100% = one core).', kind: 'timeseries', unit: 'percentunit', w: 8, expect: 'process', queries: [{ expr: `sum by (instance) (${rate('process_cpu_seconds_total')})`, legend: '{{instance}}' }] },
        {
          title: 'Memory (RSS)',
          description: 'Resident memory per sidecar.',
          kind: 'timeseries',
          unit: 'bytes',
          w: 8,
          expect: 'process',
          queries: [{ expr: `sum by (instance) (process_resident_memory_bytes{${SEL}})`, legend: 'RSS {{instance}}' }],
        },
        { title: 'Event loop lag p99', description: 'Event loop delay p99 per sidecar (a blocked loop delays every request).', kind: 'timeseries', unit: 's', w: 8, expect: 'process', queries: [{ expr: `max by (instance) (nodejs_eventloop_lag_p99_seconds{${SEL}})`, legend: '{{instance}}' }] },
      ],
    },
    {
      title: 'Policy',
      panels: [
        { title: 'Active policy', description: 'Policy in force per sidecar: name, version and hash. Differing hashes mean a rollout in progress or a refused file.', kind: 'table', unit: 'short', w: 16, expect: 'policy', queries: [{ expr: `max by (instance, name, version, hash) (palisade_policy_info{${SEL}})`, instant: true }] },
        { title: 'Policy reloads', description: 'Policy loads per interval: ok (swapped in) and refused (invalid file, previous policy kept).', kind: 'timeseries', unit: 'short', w: 8, expect: 'policy', queries: [{ expr: `sum by (result) (increase(palisade_policy_reloads_total{${SEL}}[${RI}]))`, legend: '{{result}}' }] },
      ],
    },
  ],
};
