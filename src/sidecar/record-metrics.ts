/**
 * The request path's metrics: one DecisionRecord -> requests, latency, overhead, stages, upstream,
 * bytes, rate-limited, block-list hits, would-deny. The metrics are hot-metrics.ts subclasses of
 * the prom-client types (declared in metrics.ts): raw numbers per request, moved into prom-client
 * at scrape time; the exposition is that of plain prom-client metrics.
 */
import type { DecisionRecord } from '../decision/record.ts';
import { STAGE_NAMES } from '../pipeline/types.ts';
import type { CounterSeries, HistogramSeries, HotCounter, HotHistogram } from '../telemetry/hot-metrics.ts';

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

/** The metrics recordDecision updates (declared in metrics.ts). */
export interface RequestMetrics {
  readonly requests: HotCounter<'verdict' | 'stage' | 'code' | 'route'>;
  readonly requestDuration: HotHistogram<'verdict' | 'route'>;
  readonly stageDuration: HotHistogram<'stage' | 'outcome'>;
  readonly overheadDuration: HotHistogram<'verdict'>;
  readonly upstreamDuration: HotHistogram<'route'>;
  readonly upstreamErrors: HotCounter<'code'>;
  readonly receivedBytes: HotCounter<'route'>;
  readonly sentBytes: HotCounter<'route'>;
  readonly wouldDeny: HotCounter<'stage' | 'code'>;
  readonly rateLimited: HotCounter<'route' | 'code' | 'rule'>;
  readonly blocklistHits: HotCounter<'route'>;
}

/** The inner Map of `m` at `k`, created empty on first use. */
function inner<V>(m: Map<string, Map<string, V>>, k: string): Map<string, V> {
  let i = m.get(k);
  if (i === undefined) m.set(k, (i = new Map()));
  return i;
}

/**
 * Returns recordDecision. Each label set resolves once to its raw series (hot-metrics.ts); after
 * that a request costs a few Map.get and array increments (~0.2 µs in all, bench/metrics.ts).
 * Nested Maps keyed by the label values rather than one joined key: those values are long-lived
 * strings (route templates, codes, stage names) whose hash V8 caches, so four lookups take ~25 ns
 * where building and hashing the joined key string took ~200 ns. Keys are bounded like the labels.
 */
export function createDecisionRecorder(m: RequestMetrics): (rec: DecisionRecord) => void {
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
  for (const stage of STAGE_NAMES) for (const outcome of ['continue', 'deny'] as const) m.stageDuration.zero({ stage, outcome });

  function routeSeries(route: string): RouteSeries {
    let rs = routes.get(route);
    if (rs === undefined) {
      // Creating a series adds nothing to the exposition: that happens on its first observation.
      rs = {
        decisions: new Map(),
        upstream: m.upstreamDuration.series({ route }),
        received: m.receivedBytes.series({ route }),
        sent: m.sentBytes.series({ route }),
        blocked: m.blocklistHits.series({ route }),
        rateLimited: new Map(),
      };
      routes.set(route, rs);
    }
    return rs;
  }

  // The updates happen in the order they always did, so new series reach the exposition in the
  // same order as before.
  return function recordDecision(rec: DecisionRecord): void {
    const route = rec.request.route ?? NO_ROUTE;
    const rs = routeSeries(route);
    const byVerdict = inner(inner(rs.decisions, rec.code), rec.decidedBy);
    let d = byVerdict.get(rec.verdict);
    if (d === undefined) {
      d = {
        count: m.requests.series({ verdict: rec.verdict, stage: rec.decidedBy, code: rec.code, route }),
        duration: m.requestDuration.series({ verdict: rec.verdict, route }),
        overhead: m.overheadDuration.series({ verdict: rec.verdict }),
      };
      byVerdict.set(rec.verdict, d);
    }
    d.count.inc();
    d.duration.observe(rec.durationMs / 1000);
    d.overhead.observe(Math.max(0, rec.durationMs - (rec.upstreamMs ?? 0)) / 1000);
    for (const t of rec.stages) {
      const byOutcome = inner(stages, t.stage);
      let s = byOutcome.get(t.outcome);
      if (s === undefined) byOutcome.set(t.outcome, (s = m.stageDuration.series({ stage: t.stage, outcome: t.outcome })));
      s.observe(t.us / 1e6);
    }
    if (rec.upstreamMs !== null) rs.upstream.observe(rec.upstreamMs / 1000);
    if (rec.request.bytesIn > 0) rs.received.inc(rec.request.bytesIn);
    if (rec.response.bytesOut > 0) rs.sent.inc(rec.response.bytesOut);
    for (const w of rec.wouldDeny) {
      const byCode = inner(wouldDenies, w.stage);
      let s = byCode.get(w.code);
      if (s === undefined) byCode.set(w.code, (s = m.wouldDeny.series({ stage: w.stage, code: w.code })));
      s.inc();
    }
    if (rec.verdict === 'deny') {
      const code = rec.code;
      if (code.startsWith('UPSTREAM_')) {
        let s = upstreamFailures.get(code);
        if (s === undefined) upstreamFailures.set(code, (s = m.upstreamErrors.series({ code })));
        s.inc();
      } else if (code === 'BLOCKED') {
        rs.blocked.inc();
      } else if (code === 'RATE_LIMITED' || code === 'RATE_LIMITED_GLOBAL' || code === 'QUOTA_EXCEEDED') {
        const rule = rec.rule ?? NO_ROUTE;
        const byRule = inner(rs.rateLimited, code);
        let s = byRule.get(rule);
        if (s === undefined) byRule.set(rule, (s = m.rateLimited.series({ route, code, rule })));
        s.inc();
      }
    }
  };
}
