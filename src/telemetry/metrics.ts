/**
 * Prometheus metrics of the sidecar (prom-client). The detector's are in detectors/metrics.ts.
 *
 * Exported API (stable; other modules call it):
 *
 *   const registry = new Registry();                  // from 'prom-client'
 *   const m = createSidecarMetrics(registry);          // SidecarMetrics
 *   // Also registers the standard process_* and nodejs_* metrics on that registry
 *   // (pass { processMetrics: false } to skip, e.g. two sets in one test process).
 *
 *   Sidecar, request level (the server calls these; nothing else needs to):
 *     m.recordDecision(record)                // one DecisionRecord -> requests, latency, overhead, stages,
 *                                             //   upstream, bytes, rate-limited, block-list hits, would-deny
 *                                             //   (those metrics and in-flight are hot-metrics.ts subclasses of
 *                                             //   the prom-client types: raw numbers per request, moved into
 *                                             //   prom-client at scrape time; the exposition is unchanged)
 *     m.observer                              // a SidecarObserver (src/sidecar/observer.ts) doing all of
 *                                             //   onDecision / onRequestStart / onRequestEnd (in flight) /
 *                                             //   onPolicyLoaded / onPolicyRefused / onTls*
 *     m.tlsHandshakeFailures.inc({ reason })  // reason from sidecar/tls-errors.ts (bounded)
 *     m.tlsReloads.inc({ result: 'ok' | 'refused' })
 *     m.upstreamErrors.inc({ code })          // code: an UPSTREAM_* stable code
 *                                             //   (counted by recordDecision from decisions with UPSTREAM_* codes)
 *   Authentication (src/authn/...):
 *     m.jwksFetches.inc({ issuer, result })   // issuer = the CONFIGURED issuer (policy), never a token's iss;
 *                                             //   result: 'ok' | 'error' | 'not_modified' | 'cooldown'
 *     m.jwksFetchDuration.observe({ issuer }, seconds)
 *     m.jwksCacheHits.inc({ issuer })         // key for the kid found in the cached JWKS (no fetch)
 *     m.jwksKeys.set({ issuer }, n)           // keys currently cached for the issuer
 *     m.tokenCacheLookups.inc({ mechanism, result })  // mechanism: 'jwt' | 'introspection'; result: 'hit' | 'miss'
 *     m.introspectionRequests.inc({ result }) // result: 'active' | 'inactive' | 'error'
 *     m.introspectionDuration.observe(seconds)
 *   Block list (wired by compose):
 *     m.trackBlocklist(blockListStore(services))   // run-time entries (detector, manual), kept current from
 *                                                  //   the store's change events; policy entries come from
 *                                                  //   onPolicyLoaded. palisade_blocklist_entries{kind, source}:
 *                                                  //   kind ip|cidr|subject|spiffeId|clientId|tokenId, source policy|detector|manual
 *     (hits are counted by recordDecision from BLOCKED decisions: palisade_blocklist_hits_total{route})
 *   Policy (done by m.observer; or directly):
 *     m.setPolicy({ name, version, hash })    // palisade_policy_info{...} 1, previous series removed
 *     m.policyReloads.inc({ result: 'ok' | 'refused' })
 *   Decision sinks (src/decision/sinks/...), label sink = 'kafka' | 'ndjson' | 'detector' | ...:
 *     m.decisionsPublished.inc({ sink }, n)   // delivered / acknowledged events
 *     m.decisionsDropped.inc({ sink }, n)     // lost for good (buffer and spool full)
 *     m.decisionBuffer.set({ sink }, n)       // events waiting in memory
 *     m.decisionBufferCapacity.set({ sink }, n)
 *     m.spoolBytes.set({ sink }, bytes)       // bytes in the disk spool
 *     m.spoolLimitBytes.set({ sink }, bytes)
 *     -- or, instead of the four calls above for one sink, at wiring time:
 *     m.watchSink(sink, () => sink.stats())   // read at scrape time (accepted/delivered/dropped/buffered
 *                                             //   [+ spoolBytes, capacity, spoolLimitBytes]); do not mix both
 *                                             //   styles for the same sink name.
 *
 * Label values are always bounded: verdict, stage, stable code, route template (never the raw path),
 * configured issuer, detection id, severity, partition. Never a client id, IP, token or path.
 * Creating the metrics has no side effect beyond registering them on the given registry.
 */
import { Counter, Gauge, Histogram, collectDefaultMetrics, type Registry } from 'prom-client';
import type { DecisionRecord } from '../decision/record.ts';
import type { SinkStats } from '../decision/sink.ts';
import type { SidecarObserver } from '../sidecar/observer.ts';
import type { CompiledPolicy } from '../policy/compiled.ts';
import { STAGE_NAMES } from '../pipeline/types.ts';
import { HotCounter, HotGauge, HotHistogram, type CounterSeries, type HistogramSeries } from './hot-metrics.ts';

/** Route label for a request that matched no route template of the policy. */
export const NO_ROUTE = '(none)';

/**
 * Request latency, seconds. Dense below 10 ms (the sidecar's own budget), coarse up to the
 * upstream timeout range, so both "sidecar overhead" and "service latency" percentiles work.
 */
export const REQUEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Per-stage latency, seconds: most stages take microseconds; authn may call out (JWKS, introspection). */
export const STAGE_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1];
/** Sidecar overhead (total minus upstream), seconds. */
export const OVERHEAD_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
/** Remote calls (JWKS, introspection), seconds. */
export const CALL_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export interface MetricsOptions {
  /** Register process_* and nodejs_* default metrics on the registry (default true). */
  readonly processMetrics?: boolean;
}

/** Stats a sink can expose for watchSink; the optional fields are read when present. */
export type WatchedSinkStats = SinkStats & {
  readonly spoolBytes?: number;
  readonly spoolLimitBytes?: number;
  readonly capacity?: number;
};

/** What trackBlocklist needs of the block-list store (src/blocklist/store.ts). */
export interface BlocklistSource {
  list(): readonly { readonly kind: string; readonly source: string }[];
  onChange(listener: (change: { readonly type: 'added' | 'removed' | 'expired'; readonly entry: { readonly kind: string; readonly source: string }; readonly replaced?: { readonly kind: string; readonly source: string } }) => void): () => void;
}

/** The kinds of a policy block-list entry (spec.blocklist.entries[]: exactly one of these keys). */
const POLICY_BLOCK_KINDS = ['ip', 'cidr', 'subject', 'spiffeId', 'clientId', 'tokenId'] as const;

export interface SidecarMetrics {
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
  readonly jwksFetches: Counter<'issuer' | 'result'>;
  readonly jwksFetchDuration: Histogram<'issuer'>;
  readonly jwksCacheHits: Counter<'issuer'>;
  readonly jwksKeys: Gauge<'issuer'>;
  readonly tokenCacheLookups: Counter<'mechanism' | 'result'>;
  readonly introspectionRequests: Counter<'result'>;
  readonly introspectionDuration: Histogram;
  readonly rateLimited: Counter<'route' | 'code' | 'rule'>;
  readonly blocklistEntries: Gauge<'kind' | 'source'>;
  readonly blocklistHits: Counter<'route'>;
  readonly policyReloads: Counter<'result'>;
  readonly policyInfo: Gauge<'name' | 'version' | 'hash'>;
  readonly policyLastReload: Gauge<'result'>;
  readonly decisionsPublished: Counter<'sink'>;
  readonly decisionsDropped: Counter<'sink'>;
  readonly decisionBuffer: Gauge<'sink'>;
  readonly decisionBufferCapacity: Gauge<'sink'>;
  readonly spoolBytes: Gauge<'sink'>;
  readonly spoolLimitBytes: Gauge<'sink'>;
  /** Counts one decision record (call once per request, after the response). */
  recordDecision(record: DecisionRecord): void;
  /** Sets palisade_policy_info to the active policy (previous series removed). */
  setPolicy(policy: { readonly name: string; readonly version: string; readonly hash: string }): void;
  /** Keeps palisade_blocklist_entries current with a block-list store's run-time entries. Returns the unsubscribe function. */
  trackBlocklist(store: BlocklistSource): () => void;
  /** Reads a sink's stats at scrape time into the decision sink metrics. */
  watchSink(sink: string, stats: () => WatchedSinkStats): void;
  /** Observer for the sidecar server (src/sidecar/observer.ts). */
  readonly observer: SidecarObserver;
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

// The request path's metrics (recordDecision, in flight): prom-client objects whose per-request
// updates go through cached raw series (hot-metrics.ts), not prom-client's label hashing.
function hotCounter<T extends string>(registry: Registry, name: string, help: string, labelNames: readonly T[]): HotCounter<T> {
  return new HotCounter<T>({ name, help, labelNames, registers: [registry] });
}
function hotHistogram<T extends string>(registry: Registry, name: string, help: string, buckets: readonly number[], labelNames: readonly T[]): HotHistogram<T> {
  return new HotHistogram<T>({ name, help, labelNames, buckets, registers: [registry] });
}

/** The inner Map of `m` at `k`, created empty on first use. */
function inner<V>(m: Map<string, Map<string, V>>, k: string): Map<string, V> {
  let i = m.get(k);
  if (i === undefined) m.set(k, (i = new Map()));
  return i;
}

function processMetrics(registry: Registry, options: MetricsOptions): void {
  if (options.processMetrics === false) return;
  // Standard names (process_cpu_seconds_total, nodejs_eventloop_lag_seconds...) rather than
  // palisade_-prefixed ones: every Node/process dashboard and alert already knows them, and the
  // scrape job label tells sidecar from detector.
  collectDefaultMetrics({ register: registry });
}

/** Creates and registers every sidecar metric on `registry`. */
export function createSidecarMetrics(registry: Registry, options: MetricsOptions = {}): SidecarMetrics {
  const r = registry;
  const requests = hotCounter(r, 'palisade_requests_total', 'Requests decided, by verdict (allow/deny), deciding stage, stable reason code and route template.', ['verdict', 'stage', 'code', 'route'] as const);
  const requestDuration = hotHistogram(r, 'palisade_request_duration_seconds', 'Time from request start to response end in the sidecar, upstream included, seconds.', REQUEST_BUCKETS, ['verdict', 'route'] as const);
  const stageDuration = hotHistogram(r, 'palisade_stage_duration_seconds', 'Time spent in one pipeline stage, seconds, by stage and outcome (continue/deny/would_deny/error).', STAGE_BUCKETS, ['stage', 'outcome'] as const);
  const overheadDuration = hotHistogram(r, 'palisade_sidecar_overhead_seconds', 'Time the sidecar itself added to a request (total minus upstream time), seconds: the latency budget the sidecar answers for.', OVERHEAD_BUCKETS, ['verdict'] as const);
  const upstreamDuration = hotHistogram(r, 'palisade_upstream_duration_seconds', 'Upstream time of forwarded requests (connect to last byte), seconds.', REQUEST_BUCKETS, ['route'] as const);
  const upstreamErrors = hotCounter(r, 'palisade_upstream_errors_total', 'Forwarded requests that failed at the upstream, by stable code (UPSTREAM_UNREACHABLE/ERROR/UNAVAILABLE/TIMEOUT).', ['code'] as const);
  const requestsInFlight = new HotGauge({ name: 'palisade_requests_in_flight', help: 'Requests being processed right now.', registers: [r] });
  const receivedBytes = hotCounter(r, 'palisade_received_bytes_total', 'Request body bytes received from clients, by route template.', ['route'] as const);
  const sentBytes = hotCounter(r, 'palisade_sent_bytes_total', 'Response body bytes sent to clients, by route template.', ['route'] as const);
  const wouldDeny = hotCounter(r, 'palisade_would_deny_total', 'Denies that audit (dry-run) mode let through, by stage and code.', ['stage', 'code'] as const);
  const tlsHandshakeFailures = counter(r, 'palisade_tls_handshake_failures_total', 'Failed TLS handshakes on the mTLS listener, by reason (no_client_cert, unknown_ca, cert_expired, protocol_version, ...).', ['reason'] as const);
  const tlsReloads = counter(r, 'palisade_tls_reloads_total', 'Reloads of the certificate, key and trust bundle files, by result (ok/refused).', ['result'] as const);
  const jwksFetches = counter(r, 'palisade_jwks_fetches_total', 'JWKS fetches by configured issuer and result (ok/error/not_modified/cooldown).', ['issuer', 'result'] as const);
  const jwksFetchDuration = histogram(r, 'palisade_jwks_fetch_duration_seconds', 'Duration of JWKS fetches, seconds.', CALL_BUCKETS, ['issuer'] as const);
  const jwksCacheHits = counter(r, 'palisade_jwks_cache_hits_total', 'Signing keys found in the cached JWKS without a fetch, by configured issuer.', ['issuer'] as const);
  const jwksKeys = gauge(r, 'palisade_jwks_keys', 'Keys currently cached per configured issuer.', ['issuer'] as const);
  // One lookup per authenticated request: a hot counter (authn/metrics.ts keeps its series).
  const tokenCacheLookups = new HotCounter({ name: 'palisade_token_cache_lookups_total', help: 'Lookups in the verified-token caches, by mechanism (jwt/introspection) and result (hit/miss).', labelNames: ['mechanism', 'result'] as const, registers: [r] });
  const introspectionRequests = counter(r, 'palisade_introspection_requests_total', 'OAuth2 token introspection calls by result (active/inactive/error).', ['result'] as const);
  const introspectionDuration = histogram(r, 'palisade_introspection_duration_seconds', 'Duration of introspection calls, seconds.', CALL_BUCKETS);
  const rateLimited = hotCounter(r, 'palisade_rate_limited_total', 'Requests refused by a rate limit, by route template, code and limit rule id.', ['route', 'code', 'rule'] as const);
  const blocklistEntries = gauge(r, 'palisade_blocklist_entries', 'Entries on the block list, by kind (ip, cidr, subject, spiffeId, clientId, tokenId) and source (policy, detector, manual).', ['kind', 'source'] as const);
  const blocklistHits = hotCounter(r, 'palisade_blocklist_hits_total', 'Requests refused because the client is on the block list, by route template.', ['route'] as const);
  const policyReloads = counter(r, 'palisade_policy_reloads_total', 'Policy loads by result: ok (swapped in) or refused (invalid; previous policy kept).', ['result'] as const);
  const policyInfo = gauge(r, 'palisade_policy_info', 'The active policy: always 1, labelled with its name, version and sha256 hash.', ['name', 'version', 'hash'] as const);
  const policyLastReload = gauge(r, 'palisade_policy_last_reload_timestamp_seconds', 'Unix time of the last policy load attempt, by result (ok/refused).', ['result'] as const);
  // collect runs before this metric is serialised; it is registered before the other sink
  // metrics, so every sink value of one scrape comes from the same stats() read (watchSink).
  const decisionsPublished = new Counter({
    name: 'palisade_decision_events_published_total',
    help: 'Decision events delivered by a sink (written or acknowledged by the broker).',
    labelNames: ['sink'] as const,
    registers: [r],
    collect: syncSinks,
  });
  const decisionsDropped = counter(r, 'palisade_decision_events_dropped_total', 'Decision events lost for good (buffer and spool full). Must stay zero.', ['sink'] as const);
  const decisionBuffer = gauge(r, 'palisade_decision_buffer_events', 'Decision events waiting in the sink\'s memory buffer.', ['sink'] as const);
  const decisionBufferCapacity = gauge(r, 'palisade_decision_buffer_capacity_events', 'Capacity of the sink\'s memory buffer, events.', ['sink'] as const);
  const spoolBytes = gauge(r, 'palisade_decision_spool_bytes', 'Bytes of decision events in the sink\'s disk spool (broker unreachable or slow).', ['sink'] as const);
  const spoolLimitBytes = gauge(r, 'palisade_decision_spool_limit_bytes', 'Size limit of the sink\'s disk spool, bytes.', ['sink'] as const);
  processMetrics(r, options);

  // Known, small label sets start at zero: a series that appears only with its first increment
  // loses that increment to rate(), and ratios over it stay empty until the second one.
  for (const result of ['ok', 'refused'] as const) policyReloads.inc({ result }, 0);
  for (const mechanism of ['jwt', 'introspection'] as const) for (const result of ['hit', 'miss'] as const) tokenCacheLookups.inc({ mechanism, result }, 0);
  for (const result of ['active', 'inactive', 'error'] as const) introspectionRequests.inc({ result }, 0);

  // The request path. Each label set resolves once to its raw series (hot-metrics.ts); after that
  // a request costs a few Map.get and array increments (~0.2 µs in all, bench/metrics.ts). Nested
  // Maps keyed by the label values rather than one joined key: those values are long-lived strings
  // (route templates, codes, stage names) whose hash V8 caches, so four lookups take ~25 ns where
  // building and hashing the joined key string took ~200 ns. Keys are bounded like the labels.
  interface DecisionSeries { readonly count: CounterSeries; readonly duration: HistogramSeries; readonly overhead: HistogramSeries }
  interface RouteSeries {
    /** code -> deciding stage -> verdict */
    readonly decisions: Map<string, Map<string, Map<string, DecisionSeries>>>;
    readonly upstream: HistogramSeries;
    readonly received: CounterSeries;
    readonly sent: CounterSeries;
    readonly blocked: CounterSeries;
    /** code -> rule */
    readonly rateLimited: Map<string, Map<string, CounterSeries>>;
  }
  const routes = new Map<string, RouteSeries>();
  const stages = new Map<string, Map<string, HistogramSeries>>(); // stage -> outcome
  const wouldDenies = new Map<string, Map<string, CounterSeries>>(); // stage -> code
  const upstreamFailures = new Map<string, CounterSeries>(); // code
  for (const stage of STAGE_NAMES) for (const outcome of ['continue', 'deny'] as const) stageDuration.zero({ stage, outcome });

  function routeSeries(route: string): RouteSeries {
    let rs = routes.get(route);
    if (rs === undefined) {
      // Creating a series adds nothing to the exposition: that happens on its first observation.
      rs = {
        decisions: new Map(),
        upstream: upstreamDuration.series({ route }),
        received: receivedBytes.series({ route }),
        sent: sentBytes.series({ route }),
        blocked: blocklistHits.series({ route }),
        rateLimited: new Map(),
      };
      routes.set(route, rs);
    }
    return rs;
  }

  // The updates happen in the order they always did, so new series reach the exposition in the
  // same order as before.
  function recordDecision(rec: DecisionRecord): void {
    const route = rec.request.route ?? NO_ROUTE;
    const rs = routeSeries(route);
    const byVerdict = inner(inner(rs.decisions, rec.code), rec.decidedBy);
    let d = byVerdict.get(rec.verdict);
    if (d === undefined) {
      d = {
        count: requests.series({ verdict: rec.verdict, stage: rec.decidedBy, code: rec.code, route }),
        duration: requestDuration.series({ verdict: rec.verdict, route }),
        overhead: overheadDuration.series({ verdict: rec.verdict }),
      };
      byVerdict.set(rec.verdict, d);
    }
    d.count.inc();
    d.duration.observe(rec.durationMs / 1000);
    d.overhead.observe(Math.max(0, rec.durationMs - (rec.upstreamMs ?? 0)) / 1000);
    for (const t of rec.stages) {
      const byOutcome = inner(stages, t.stage);
      let s = byOutcome.get(t.outcome);
      if (s === undefined) byOutcome.set(t.outcome, (s = stageDuration.series({ stage: t.stage, outcome: t.outcome })));
      s.observe(t.us / 1e6);
    }
    if (rec.upstreamMs !== null) rs.upstream.observe(rec.upstreamMs / 1000);
    if (rec.request.bytesIn > 0) rs.received.inc(rec.request.bytesIn);
    if (rec.response.bytesOut > 0) rs.sent.inc(rec.response.bytesOut);
    for (const w of rec.wouldDeny) {
      const byCode = inner(wouldDenies, w.stage);
      let s = byCode.get(w.code);
      if (s === undefined) byCode.set(w.code, (s = wouldDeny.series({ stage: w.stage, code: w.code })));
      s.inc();
    }
    if (rec.verdict === 'deny') {
      const code = rec.code;
      if (code.startsWith('UPSTREAM_')) {
        let s = upstreamFailures.get(code);
        if (s === undefined) upstreamFailures.set(code, (s = upstreamErrors.series({ code })));
        s.inc();
      } else if (code === 'BLOCKED') {
        rs.blocked.inc();
      } else if (code === 'RATE_LIMITED' || code === 'RATE_LIMITED_GLOBAL') {
        const rule = rec.rule ?? NO_ROUTE;
        const byRule = inner(rs.rateLimited, code);
        let s = byRule.get(rule);
        if (s === undefined) byRule.set(rule, (s = rateLimited.series({ route, code, rule })));
        s.inc();
      }
    }
  }

  function setPolicy(p: { readonly name: string; readonly version: string; readonly hash: string }): void {
    policyInfo.reset();
    policyInfo.set({ name: p.name, version: p.version, hash: p.hash }, 1);
  }

  // Counters cannot be set; watchSink turns a sink's running totals into increments at scrape time.
  const watched = new Map<string, { stats: () => WatchedSinkStats; delivered: number; dropped: number }>();
  function syncSinks(): void {
    for (const [sink, w] of watched) {
      let s: WatchedSinkStats;
      try {
        s = w.stats();
      } catch {
        continue; // a sink being closed must not break the scrape
      }
      if (s.delivered > w.delivered) decisionsPublished.inc({ sink }, s.delivered - w.delivered);
      if (s.dropped > w.dropped) decisionsDropped.inc({ sink }, s.dropped - w.dropped);
      w.delivered = Math.max(w.delivered, s.delivered);
      w.dropped = Math.max(w.dropped, s.dropped);
      decisionBuffer.set({ sink }, s.buffered);
      if (s.capacity !== undefined) decisionBufferCapacity.set({ sink }, s.capacity);
      if (s.spoolBytes !== undefined) spoolBytes.set({ sink }, s.spoolBytes);
      if (s.spoolLimitBytes !== undefined) spoolLimitBytes.set({ sink }, s.spoolLimitBytes);
    }
  }
  function watchSink(sink: string, stats: () => WatchedSinkStats): void {
    watched.set(sink, { stats, delivered: 0, dropped: 0 });
    decisionsPublished.inc({ sink }, 0);
    decisionsDropped.inc({ sink }, 0);
    decisionBuffer.set({ sink }, 0);
  }

  // Entries per (kind, source): run-time ones follow the store's change events (O(1) per change,
  // nothing per scrape); policy ones are recounted when a policy loads.
  const blockCounts = new Map<string, number>();
  const bump = (kind: string, source: string, d: number) => {
    const k = `${kind}\u0000${source}`;
    const n = (blockCounts.get(k) ?? 0) + d;
    blockCounts.set(k, n);
    blocklistEntries.set({ kind, source }, n);
  };
  function trackBlocklist(store: BlocklistSource): () => void {
    for (const e of store.list()) bump(e.kind, e.source, 1);
    return store.onChange((c) => {
      if (c.type === 'added') {
        if (c.replaced) bump(c.replaced.kind, c.replaced.source, -1);
        bump(c.entry.kind, c.entry.source, 1);
      } else {
        bump(c.entry.kind, c.entry.source, -1);
      }
    });
  }
  function countPolicyBlocks(policy: CompiledPolicy): void {
    for (const kind of POLICY_BLOCK_KINDS) blocklistEntries.set({ kind, source: 'policy' }, 0);
    // Optional chaining: a policy compiled before the blocklist section existed has none.
    const entries = policy.document.spec.blocklist?.entries ?? [];
    const n = new Map<string, number>();
    for (const e of entries) {
      const kind = POLICY_BLOCK_KINDS.find((k) => typeof e[k] === 'string');
      if (kind) n.set(kind, (n.get(kind) ?? 0) + 1);
    }
    for (const [kind, c] of n) blocklistEntries.set({ kind, source: 'policy' }, c);
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
      countPolicyBlocks(policy);
    },
    onPolicyRefused() {
      policyReloads.inc({ result: 'refused' });
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
    // Upstream failures end as a decision with an UPSTREAM_* code, counted by recordDecision;
    // counting here too would count each failure twice.
  };

  return {
    registry: r,
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
    jwksFetches,
    jwksFetchDuration,
    jwksCacheHits,
    jwksKeys,
    tokenCacheLookups,
    introspectionRequests,
    introspectionDuration,
    rateLimited,
    blocklistEntries,
    blocklistHits,
    policyReloads,
    policyInfo,
    policyLastReload,
    decisionsPublished,
    decisionsDropped,
    decisionBuffer,
    decisionBufferCapacity,
    spoolBytes,
    spoolLimitBytes,
    recordDecision,
    setPolicy,
    trackBlocklist,
    watchSink,
    observer,
  };
}
