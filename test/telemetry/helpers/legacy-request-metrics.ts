/**
 * The request-path sidecar metrics recorded the way src/telemetry/metrics.ts (now src/sidecar/metrics.ts) did before the
 * hot-path recorder (src/telemetry/hot-metrics.ts): plain prom-client metrics and cached label
 * children, whose every observe/inc hashes the label object again. Kept verbatim (names, help,
 * buckets, label order, update order) as the reference the new exposition must equal
 * (test/telemetry/hot-metrics.test.ts) and as the "before" of bench/metrics.ts.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { DecisionRecord } from '../../../src/decision/record.ts';
import { STAGE_NAMES } from '../../../src/pipeline/types.ts';

const NO_ROUTE = '(none)';
const REQUEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const STAGE_BUCKETS = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1];
const OVERHEAD_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

export interface LegacyRequestMetrics {
  readonly requests: Counter<'verdict' | 'stage' | 'code' | 'route'>;
  readonly stageDuration: Histogram<'stage' | 'outcome'>;
  readonly requestsInFlight: Gauge;
  /** Names of the metrics below, in registration order. */
  readonly names: readonly string[];
  recordDecision(rec: DecisionRecord): void;
  onRequestStart(): void;
  onRequestEnd(): void;
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

export function createLegacyRequestMetrics(r: Registry): LegacyRequestMetrics {
  const requests = counter(r, 'palisade_requests_total', 'Requests decided, by verdict (allow/deny), deciding stage, stable reason code and route template.', ['verdict', 'stage', 'code', 'route'] as const);
  const requestDuration = histogram(r, 'palisade_request_duration_seconds', 'Time from request start to response end in the sidecar, upstream included, seconds.', REQUEST_BUCKETS, ['verdict', 'route'] as const);
  const stageDuration = histogram(r, 'palisade_stage_duration_seconds', 'Time spent in one pipeline stage, seconds, by stage and outcome (continue/deny/would_deny/error).', STAGE_BUCKETS, ['stage', 'outcome'] as const);
  const overheadDuration = histogram(r, 'palisade_sidecar_overhead_seconds', 'Time the sidecar itself added to a request (total minus upstream time), seconds: the latency budget the sidecar answers for.', OVERHEAD_BUCKETS, ['verdict'] as const);
  const upstreamDuration = histogram(r, 'palisade_upstream_duration_seconds', 'Upstream time of forwarded requests (connect to last byte), seconds.', REQUEST_BUCKETS, ['route'] as const);
  const upstreamErrors = counter(r, 'palisade_upstream_errors_total', 'Forwarded requests that failed at the upstream, by stable code (UPSTREAM_UNREACHABLE/ERROR/UNAVAILABLE/TIMEOUT).', ['code'] as const);
  const requestsInFlight = gauge(r, 'palisade_requests_in_flight', 'Requests being processed right now.');
  const receivedBytes = counter(r, 'palisade_received_bytes_total', 'Request body bytes received from clients, by route template.', ['route'] as const);
  const sentBytes = counter(r, 'palisade_sent_bytes_total', 'Response body bytes sent to clients, by route template.', ['route'] as const);
  const wouldDeny = counter(r, 'palisade_would_deny_total', 'Denies that audit (dry-run) mode let through, by stage and code.', ['stage', 'code'] as const);
  const rateLimited = counter(r, 'palisade_rate_limited_total', 'Requests refused by a rate limit, by route template, code and limit rule id.', ['route', 'code', 'rule'] as const);
  const blocklistHits = counter(r, 'palisade_blocklist_hits_total', 'Requests refused because the client is on the block list, by route template.', ['route'] as const);

  type ReqChildren = { count: Counter.Internal; duration: Histogram.Internal<'verdict' | 'route'>; overhead: Histogram.Internal<'verdict'> };
  const reqChildren = new Map<string, ReqChildren>();
  const stageChildren = new Map<string, Histogram.Internal<'stage' | 'outcome'>>();
  const routeChildren = new Map<string, { up: Histogram.Internal<'route'>; inB: Counter.Internal; outB: Counter.Internal }>();
  for (const stage of STAGE_NAMES) for (const outcome of ['continue', 'deny'] as const) stageDuration.zero({ stage, outcome });

  function routeChild(route: string) {
    let c = routeChildren.get(route);
    if (c === undefined) {
      c = { up: upstreamDuration.labels({ route }), inB: receivedBytes.labels({ route }), outB: sentBytes.labels({ route }) };
      routeChildren.set(route, c);
    }
    return c;
  }

  function recordDecision(rec: DecisionRecord): void {
    const route = rec.request.route ?? NO_ROUTE;
    const key = `${rec.verdict}\u0000${rec.decidedBy}\u0000${rec.code}\u0000${route}`;
    let rc = reqChildren.get(key);
    if (rc === undefined) {
      rc = {
        count: requests.labels({ verdict: rec.verdict, stage: rec.decidedBy, code: rec.code, route }),
        duration: requestDuration.labels({ verdict: rec.verdict, route }),
        overhead: overheadDuration.labels({ verdict: rec.verdict }),
      };
      reqChildren.set(key, rc);
    }
    rc.count.inc();
    rc.duration.observe(rec.durationMs / 1000);
    rc.overhead.observe(Math.max(0, rec.durationMs - (rec.upstreamMs ?? 0)) / 1000);
    for (const t of rec.stages) {
      const sk = `${t.stage}\u0000${t.outcome}`;
      let sc = stageChildren.get(sk);
      if (sc === undefined) {
        sc = stageDuration.labels({ stage: t.stage, outcome: t.outcome });
        stageChildren.set(sk, sc);
      }
      sc.observe(t.us / 1e6);
    }
    const rcRoute = routeChild(route);
    if (rec.upstreamMs !== null) rcRoute.up.observe(rec.upstreamMs / 1000);
    if (rec.request.bytesIn > 0) rcRoute.inB.inc(rec.request.bytesIn);
    if (rec.response.bytesOut > 0) rcRoute.outB.inc(rec.response.bytesOut);
    for (const w of rec.wouldDeny) wouldDeny.inc({ stage: w.stage, code: w.code });
    if (rec.verdict === 'deny') {
      const code = rec.code;
      if (code.startsWith('UPSTREAM_')) upstreamErrors.inc({ code });
      else if (code === 'BLOCKED') blocklistHits.inc({ route });
      else if (code === 'RATE_LIMITED' || code === 'RATE_LIMITED_GLOBAL') rateLimited.inc({ route, code, rule: rec.rule ?? NO_ROUTE });
    }
  }

  return {
    requests,
    stageDuration,
    requestsInFlight,
    names: [requests, requestDuration, stageDuration, overheadDuration, upstreamDuration, upstreamErrors, requestsInFlight, receivedBytes, sentBytes, wouldDeny, rateLimited, blocklistHits].map((m) => (m as unknown as { name: string }).name),
    recordDecision,
    onRequestStart: () => requestsInFlight.inc(),
    onRequestEnd: () => requestsInFlight.dec(),
  };
}
