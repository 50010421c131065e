/**
 * Prometheus metrics of the sidecar (prom-client). The detector's are in detectors/metrics.ts.
 * Each concern declares its own beside its code and this file registers them all, in one order
 * (the exposition and the generated docs/observability.md follow it):
 *
 *   request path   record-metrics.ts       m.recordDecision(record): requests, latency, overhead,
 *                                          stages, upstream (errors included), bytes, rate-limited,
 *                                          block-list hits, would-deny
 *   in flight, TLS, policy   here           through m.observer (a SidecarObserver, observer.ts):
 *                                          onDecision / onRequestStart / onRequestEnd / onPolicy* / onTls*
 *   authn          src/authn/metrics.ts    hooks wired by compose: authnMetricsFrom(m)
 *   block list     src/blocklist/metrics.ts  m.trackBlocklist(store); policy entries on each load
 *   quotas         src/ratelimit/quota-metrics.ts  m.trackQuotas(store) (fleet-wide quotas held)
 *   decision sinks src/decision/sinks/metrics.ts  m.watchSink(name, () => sink.stats())
 *
 *   const m = createSidecarMetrics(new Registry());   // also registers process_* and nodejs_*
 *                                                     // ({ processMetrics: false } to skip)
 *
 * Label values are always bounded: verdict, stage, stable code, route template (never the raw path),
 * configured issuer, reason words. Never a client id, IP, token or path.
 * Creating the metrics has no side effect beyond registering them on the given registry.
 */
import { Counter, Gauge, collectDefaultMetrics, type Histogram, type Registry } from 'prom-client';
import { createAuthnMetricSet, zeroAuthnMetrics, type AuthnMetricSet } from '../authn/metrics.ts';
import { createBlocklistMetrics, type BlocklistSource } from '../blocklist/metrics.ts';
import { createQuotaMetrics, type QuotaSource } from '../ratelimit/quota-metrics.ts';
import type { DecisionRecord } from '../decision/record.ts';
import { createSinkMetrics, type SinkMetrics } from '../decision/sinks/metrics.ts';
import { HotCounter, HotGauge, HotHistogram } from '../telemetry/hot-metrics.ts';
import type { SidecarObserver } from './observer.ts';
import { createDecisionRecorder, OVERHEAD_BUCKETS, REQUEST_BUCKETS, STAGE_BUCKETS } from './record-metrics.ts';

export { NO_ROUTE, OVERHEAD_BUCKETS, REQUEST_BUCKETS, STAGE_BUCKETS } from './record-metrics.ts';
export { CALL_BUCKETS } from '../authn/metrics.ts';
export type { BlocklistSource } from '../blocklist/metrics.ts';

export interface MetricsOptions {
  /** Register process_* and nodejs_* default metrics on the registry (default true). */
  readonly processMetrics?: boolean;
}

export interface SidecarMetrics extends AuthnMetricSet, SinkMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'verdict' | 'stage' | 'code' | 'route'>;
  readonly requestDuration: Histogram<'verdict' | 'route'>;
  readonly stageDuration: Histogram<'stage' | 'outcome'>;
  readonly overheadDuration: Histogram<'verdict'>;
  readonly upstreamDuration: Histogram<'route'>;
  readonly upstreamErrors: Counter<'code'>;
  readonly requestsInFlight: Gauge;
  readonly receivedBytes: Counter<'route'>;
  readonly sentBytes: Counter<'route'>;
  readonly wouldDeny: Counter<'stage' | 'code'>;
  readonly tlsHandshakeFailures: Counter<'reason'>;
  readonly tlsReloads: Counter<'result'>;
  readonly rateLimited: Counter<'route' | 'code' | 'rule'>;
  readonly blocklistEntries: Gauge<'kind' | 'source'>;
  readonly blocklistHits: Counter<'route'>;
  readonly policyReloads: Counter<'result'>;
  readonly policyInfo: Gauge<'name' | 'version' | 'hash'>;
  readonly policyLastReload: Gauge<'result'>;
  readonly policySignatureRefusals: Counter<'code'>;
  readonly policySignatureVerified: Gauge<'key_id'>;
  /** Counts one decision record (call once per request, after the response). */
  recordDecision(record: DecisionRecord): void;
  /** Sets palisade_policy_info to the active policy (previous series removed). */
  setPolicy(policy: { readonly name: string; readonly version: string; readonly hash: string }): void;
  /** Keeps palisade_blocklist_entries current with a block-list store's run-time entries. Returns the unsubscribe function. */
  trackBlocklist(store: BlocklistSource): () => void;
  /** Keeps palisade_quota_keys read from the sidecar's quota store. */
  trackQuotas(store: QuotaSource, now?: () => number): void;
  /** Observer for the sidecar server (observer.ts). */
  readonly observer: SidecarObserver;
}

const counter = <T extends string>(registers: Registry[], name: string, help: string, labelNames: readonly T[]) => new Counter<T>({ name, help, labelNames, registers });
const gauge = <T extends string>(registers: Registry[], name: string, help: string, labelNames: readonly T[]) => new Gauge<T>({ name, help, labelNames, registers });
// The request path's metrics: prom-client objects whose per-request updates go through cached raw
// series (hot-metrics.ts), not prom-client's label hashing.
const hotCounter = <T extends string>(registers: Registry[], name: string, help: string, labelNames: readonly T[]) => new HotCounter<T>({ name, help, labelNames, registers });
const hotHistogram = <T extends string>(registers: Registry[], name: string, help: string, buckets: readonly number[], labelNames: readonly T[]) => new HotHistogram<T>({ name, help, labelNames, buckets, registers });

/** The signature refusals counted by palisade_policy_signature_refusals_total (src/errors/codes.ts). */
const SIGNATURE_CODES = ['POLICY_SIGNATURE_MISSING', 'POLICY_SIGNATURE_MALFORMED', 'POLICY_SIGNATURE_INVALID'] as const;

/** Creates and registers every sidecar metric on `registry`. */
export function createSidecarMetrics(registry: Registry, options: MetricsOptions = {}): SidecarMetrics {
  const r = [registry];
  const requests = hotCounter(r, 'palisade_requests_total', 'Requests decided, by verdict (allow/deny), deciding stage, stable reason code and route template.', ['verdict', 'stage', 'code', 'route'] as const);
  const requestDuration = hotHistogram(r, 'palisade_request_duration_seconds', 'Time from request start to response end in the sidecar, upstream included, seconds.', REQUEST_BUCKETS, ['verdict', 'route'] as const);
  const stageDuration = hotHistogram(r, 'palisade_stage_duration_seconds', 'Time spent in one pipeline stage, seconds, by stage and outcome (continue/deny/would_deny/error).', STAGE_BUCKETS, ['stage', 'outcome'] as const);
  const overheadDuration = hotHistogram(r, 'palisade_sidecar_overhead_seconds', 'Time the sidecar itself added to a request (total minus upstream time), seconds: the latency budget the sidecar answers for.', OVERHEAD_BUCKETS, ['verdict'] as const);
  const upstreamDuration = hotHistogram(r, 'palisade_upstream_duration_seconds', 'Upstream time of forwarded requests (connect to last byte), seconds.', REQUEST_BUCKETS, ['route'] as const);
  const upstreamErrors = hotCounter(r, 'palisade_upstream_errors_total', 'Forwarded requests that failed at the upstream, by stable code (UPSTREAM_UNREACHABLE/ERROR/UNAVAILABLE/TIMEOUT).', ['code'] as const);
  const requestsInFlight = new HotGauge({ name: 'palisade_requests_in_flight', help: 'Requests being processed right now.', registers: r });
  const receivedBytes = hotCounter(r, 'palisade_received_bytes_total', 'Request body bytes received from clients, by route template.', ['route'] as const);
  const sentBytes = hotCounter(r, 'palisade_sent_bytes_total', 'Response body bytes sent to clients, by route template.', ['route'] as const);
  const wouldDeny = hotCounter(r, 'palisade_would_deny_total', 'Denies that audit (dry-run) mode let through, by stage and code.', ['stage', 'code'] as const);
  const tlsHandshakeFailures = counter(r, 'palisade_tls_handshake_failures_total', 'Failed TLS handshakes on the mTLS listener, by reason (no_client_cert, unknown_ca, cert_expired, protocol_version, ...).', ['reason'] as const);
  const tlsReloads = counter(r, 'palisade_tls_reloads_total', 'Reloads of the certificate, key and trust bundle files, by result (ok/refused).', ['result'] as const);
  const authn = createAuthnMetricSet(registry);
  const rateLimited = hotCounter(r, 'palisade_rate_limited_total', 'Requests refused by a rate limit, by route template, code and limit rule id.', ['route', 'code', 'rule'] as const);
  const blocklist = createBlocklistMetrics(registry);
  const quotas = createQuotaMetrics(registry);
  const blocklistHits = hotCounter(r, 'palisade_blocklist_hits_total', 'Requests refused because the client is on the block list, by route template.', ['route'] as const);
  const policyReloads = counter(r, 'palisade_policy_reloads_total', 'Policy loads by result: ok (swapped in) or refused (invalid; previous policy kept).', ['result'] as const);
  const policyInfo = gauge(r, 'palisade_policy_info', 'The active policy: always 1, labelled with its name, version and sha256 hash.', ['name', 'version', 'hash'] as const);
  const policyLastReload = gauge(r, 'palisade_policy_last_reload_timestamp_seconds', 'Unix time of the last policy load attempt, by result (ok/refused).', ['result'] as const);
  const policySignatureRefusals = counter(r, 'palisade_policy_signature_refusals_total', 'Policies refused because of their signature, by stable code: POLICY_SIGNATURE_MISSING (unsigned while signatures are required), POLICY_SIGNATURE_MALFORMED, POLICY_SIGNATURE_INVALID (changed after signing, or an untrusted key). The previous policy stays in force.', ['code'] as const);
  const policySignatureVerified = gauge(r, 'palisade_policy_signature_verified', 'Whether the policy in force was verified against a trusted key before it was applied: 1 (labelled with that key id) or 0 (key_id empty).', ['key_id'] as const);
  const sinks = createSinkMetrics(registry);
  // Standard names (process_cpu_seconds_total, nodejs_eventloop_lag_seconds...) rather than
  // palisade_-prefixed ones: every Node/process dashboard and alert already knows them, and the
  // scrape job label tells sidecar from detector.
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry });

  // Known, small label sets start at zero: a series that appears only with its first increment
  // loses that increment to rate(), and ratios over it stay empty until the second one.
  for (const result of ['ok', 'refused'] as const) policyReloads.inc({ result }, 0);
  for (const code of SIGNATURE_CODES) policySignatureRefusals.inc({ code }, 0);
  zeroAuthnMetrics(authn);

  const recordDecision = createDecisionRecorder({ requests, requestDuration, stageDuration, overheadDuration, upstreamDuration, upstreamErrors, receivedBytes, sentBytes, wouldDeny, rateLimited, blocklistHits });

  function setPolicy(p: { readonly name: string; readonly version: string; readonly hash: string }): void {
    policyInfo.reset();
    policyInfo.set({ name: p.name, version: p.version, hash: p.hash }, 1);
  }

  const observer: SidecarObserver = {
    onDecision: recordDecision,
    // Once each per request: a plain number, moved into the gauge at scrape time.
    onRequestStart() {
      requestsInFlight.add(1);
    },
    onRequestEnd() {
      requestsInFlight.add(-1);
    },
    onPolicyLoaded(policy) {
      policyReloads.inc({ result: 'ok' });
      policyLastReload.set({ result: 'ok' }, Date.now() / 1000);
      setPolicy(policy);
      blocklist.countPolicyBlocks(policy.document);
      quotas.countPolicyQuotas(policy.document);
      policySignatureVerified.reset();
      // A policy made by hand (tests, tools) may not say: unverified.
      policySignatureVerified.set({ key_id: policy.signature?.keyId ?? '' }, policy.signature?.verified === true ? 1 : 0);
    },
    onPolicyRefused(error) {
      policyReloads.inc({ result: 'refused' });
      const code = (error as { code?: string }).code;
      if (code !== undefined && (SIGNATURE_CODES as readonly string[]).includes(code)) policySignatureRefusals.inc({ code });
      policyLastReload.set({ result: 'refused' }, Date.now() / 1000);
    },
    onTlsReloaded() {
      tlsReloads.inc({ result: 'ok' });
    },
    onTlsRefused() {
      tlsReloads.inc({ result: 'refused' });
    },
    onTlsHandshakeError(reason) {
      tlsHandshakeFailures.inc({ reason });
    },
  };

  return {
    registry,
    requests,
    requestDuration,
    stageDuration,
    overheadDuration,
    upstreamDuration,
    upstreamErrors,
    requestsInFlight,
    receivedBytes,
    sentBytes,
    wouldDeny,
    tlsHandshakeFailures,
    tlsReloads,
    ...authn,
    rateLimited,
    blocklistEntries: blocklist.blocklistEntries,
    blocklistHits,
    policyReloads,
    policyInfo,
    policyLastReload,
    policySignatureRefusals,
    policySignatureVerified,
    ...sinks,
    recordDecision,
    setPolicy,
    trackBlocklist: blocklist.trackBlocklist,
    trackQuotas: quotas.trackQuotas,
    observer,
  };
}
