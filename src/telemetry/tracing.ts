/**
 * OpenTelemetry traces of the sidecar: one SERVER span per request (continuing the client's W3C
 * traceparent), one INTERNAL span per pipeline stage, one CLIENT span for the upstream call whose
 * context goes to the upstream in traceparent/tracestate. The trace id lands in the decision
 * record, so a SIEM event links to its trace.
 *
 * Exported API:
 *
 *   const tracing = await startTracing(tracingOptionsFromEnv(process.env));   // TRACING_OFF if no endpoint
 *   // per request (src/sidecar/server.ts):
 *   const rt = tracing.startRequest(req.headers, method, scheme);   // at request start
 *   ctx.traceId = rt.traceId;                                        // 32 hex or null
 *   rt.beginStages();                                                // right before runPipeline
 *   headers = rt.injectUpstream(upstreamHeaders);                    // in rewriteRequestHeaders
 *   rt.end(decisionRecord);                                          // once, with the record
 *   await tracing.shutdown();                                        // flushes the exporter
 *
 * Off (no PALISADE_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT): the SDK is never loaded;
 * startRequest only reads the client's traceparent for the trace id (so a decision still links to
 * the client's trace) and the header passes through to the upstream untouched. Cost: one header
 * lookup and, when present, one regex.
 *
 * Sampling and "a denied request is always recorded". The head sampler decides at span start, but
 * the verdict is known only at the end. So:
 *   1. The sampler is parent-based with a trace-id ratio for roots (and, unless the client's
 *      sampled flag is trusted, for remote parents too), wrapped so that "drop" becomes
 *      "record only": every request gets real, recording spans; the sampled flag stays as the
 *      ratio decided, and that is the flag sent to the upstream.
 *   2. DenyKeepingProcessor sits in front of the batch exporter. Sampled spans pass straight
 *      through. Unsampled spans of a request are held in memory until the request's local root
 *      (the SERVER span) ends; if its verdict is deny, the whole request is exported (flag
 *      upgraded to sampled), otherwise the held spans are discarded. Held spans are bounded
 *      (maxPendingTraces, oldest evicted) so a root that never ends cannot leak memory.
 * A request only becomes "held" for its own duration, and the stage spans are created at the end
 * from the runner's measured timings (below), so the held set is tiny.
 *
 * Stage spans are laid out from RequestContext.timings (the runner already measures each stage):
 * starting at beginStages(), back to back with their measured durations. This keeps the request
 * path free of per-stage span and context work, at the price of sub-microsecond gaps between
 * stages being folded in.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Attributes, Context, Link, Span, SpanContext, SpanKind as SpanKindT, Tracer, HrTime } from '@opentelemetry/api';
import type { tracing as sdkTracing } from '@opentelemetry/sdk-node';
import type { DecisionRecord } from '../decision/record.ts';

type ReadableSpan = sdkTracing.ReadableSpan;
type SpanProcessor = sdkTracing.SpanProcessor;
type Sampler = sdkTracing.Sampler;
type SamplingResult = sdkTracing.SamplingResult;

export interface TracingOptions {
  /**
   * OTLP/HTTP base URL (as OTEL_EXPORTER_OTLP_ENDPOINT: "/v1/traces" is appended), or a full
   * traces URL when `endpointIsTracesUrl`. null: tracing off.
   */
  readonly endpoint: string | null;
  readonly endpointIsTracesUrl?: boolean;
  /** Fraction of requests (by trace id) recorded when nothing else decides, 0..1. */
  readonly sampleRatio: number;
  /** Follow the client's sampled flag (parent-based). false: apply the ratio to every trace. */
  readonly respectParentSampled: boolean;
  readonly serviceName: string;
  /** The upstream base URL (http://127.0.0.1:8081): server.address/port of the upstream spans. */
  readonly upstream?: string;
  /** Extra OTLP request headers (e.g. an auth header for the collector). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Unsampled requests held until their verdict is known, at most (default 10000). */
  readonly maxPendingTraces?: number;
  /** Batch exporter: delay between exports, ms (default 2000). */
  readonly exportDelayMs?: number;
  /** Batch exporter: spans per export request, at most (default 512). */
  readonly exportBatchSize?: number;
  /** Batch exporter: spans waiting for export, at most; beyond it spans are dropped (default 8192). */
  readonly maxQueueSize?: number;
}

export interface RequestTrace {
  /** W3C trace id (32 lowercase hex) or null. */
  readonly traceId: string | null;
  /** Marks the start of the stage pipeline (stage spans are laid out from here). */
  beginStages(): void;
  /**
   * Starts the upstream CLIENT span and writes its traceparent (and tracestate) into `headers`,
   * replacing the client's; returns `headers`. Off: returns them untouched (the client's
   * traceparent passes through).
   */
  injectUpstream(headers: IncomingHttpHeaders): IncomingHttpHeaders;
  /** Ends the request's spans with the decision's facts. Call once. */
  end(record: DecisionRecord): void;
}

export interface TracingStats {
  /** Unsampled requests exported because they were denied. */
  readonly deniedKept: number;
  /** Unsampled allowed requests discarded. */
  readonly discarded: number;
  /** Held requests evicted because maxPendingTraces was reached. */
  readonly evicted: number;
  readonly pending: number;
}

export interface Tracing {
  readonly enabled: boolean;
  startRequest(headers: IncomingHttpHeaders, method: string, scheme: 'https' | 'http'): RequestTrace;
  stats(): TracingStats;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

// ---------------------------------------------------------------- off

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-|$)/;
const ZERO_TRACE = '00000000000000000000000000000000';
const ZERO_SPAN = '0000000000000000';

/** The trace id of a valid W3C traceparent header, else null. */
export function traceIdFromTraceparent(value: string | string[] | undefined): string | null {
  if (typeof value !== 'string' || value.length < 55) return null;
  const m = TRACEPARENT.exec(value.trim());
  if (m === null || m[1] === 'ff' || m[2] === ZERO_TRACE || m[3] === ZERO_SPAN) return null;
  // Version 00 has exactly four fields; later versions may append more.
  if (m[1] === '00' && value.trim().length !== 55) return null;
  return m[2]!;
}

const noop = (): void => {};
const same = (h: IncomingHttpHeaders): IncomingHttpHeaders => h;
/** A request without a trace (tracing off and no valid traceparent from the client). */
export const NO_REQUEST_TRACE: RequestTrace = Object.freeze({ traceId: null, beginStages: noop, injectUpstream: same, end: noop });

function passThrough(traceId: string): RequestTrace {
  return { traceId, beginStages: noop, injectUpstream: same, end: noop };
}

/** Tracing off: no SDK, no spans; the client's trace id is still reported. */
export const TRACING_OFF: Tracing = Object.freeze({
  enabled: false,
  startRequest(headers: IncomingHttpHeaders): RequestTrace {
    const tp = headers.traceparent;
    if (tp === undefined) return NO_REQUEST_TRACE;
    const id = traceIdFromTraceparent(tp);
    return id === null ? NO_REQUEST_TRACE : passThrough(id);
  },
  stats: () => ({ deniedKept: 0, discarded: 0, evicted: 0, pending: 0 }),
  forceFlush: async () => {},
  shutdown: async () => {},
});

// ---------------------------------------------------------------- options

function num(v: string | undefined): number | undefined {
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** Parses "k1=v1,k2=v2" (OTEL_EXPORTER_OTLP_HEADERS format, values URL-encoded). */
function parseHeaderList(v: string | undefined): Record<string, string> | undefined {
  if (!v) return undefined;
  const out: Record<string, string> = {};
  for (const part of v.split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    out[decodeURIComponent(part.slice(0, i).trim())] = decodeURIComponent(part.slice(i + 1).trim());
  }
  return out;
}

/**
 * Tracing options from the environment, with the sidecar's settings (src/config/settings.ts)
 * taking precedence when given in `settings`:
 *   PALISADE_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT   base URL (".../v1/traces" appended)
 *   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT                     full traces URL
 *   PALISADE_TRACE_SAMPLE_RATIO (default 1)                0..1, by trace id
 *   PALISADE_TRACE_RESPECT_PARENT (default true)           follow the client's sampled flag
 *   OTEL_SERVICE_NAME (default palisade-sidecar), OTEL_EXPORTER_OTLP_[TRACES_]HEADERS
 *   OTEL_SDK_DISABLED=true turns tracing off.
 */
export function tracingOptionsFromEnv(
  env: NodeJS.ProcessEnv,
  settings: { readonly otlpEndpoint?: string; readonly traceSampleRatio?: number; readonly traceRespectParent?: boolean; readonly upstream?: string; readonly serviceName?: string } = {},
): TracingOptions {
  const own = settings.otlpEndpoint || env['PALISADE_OTLP_ENDPOINT'] || null;
  const base = own ?? (env['OTEL_EXPORTER_OTLP_ENDPOINT'] || null);
  const full = own ? null : env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] || null;
  const disabled = (env['OTEL_SDK_DISABLED'] ?? '').trim().toLowerCase() === 'true';
  const ratio = settings.traceSampleRatio ?? num(env['PALISADE_TRACE_SAMPLE_RATIO']) ?? 1;
  if (!(ratio >= 0 && ratio <= 1)) throw new RangeError(`PALISADE_TRACE_SAMPLE_RATIO: must be between 0 and 1, got ${ratio}`);
  let respect = settings.traceRespectParent;
  if (respect === undefined) {
    const v = (env['PALISADE_TRACE_RESPECT_PARENT'] ?? 'true').trim().toLowerCase();
    if (v !== 'true' && v !== 'false') throw new RangeError(`PALISADE_TRACE_RESPECT_PARENT: must be true or false, got ${v}`);
    respect = v === 'true';
  }
  const headers = parseHeaderList(env['OTEL_EXPORTER_OTLP_TRACES_HEADERS'] ?? env['OTEL_EXPORTER_OTLP_HEADERS']);
  return {
    endpoint: disabled ? null : (full ?? base),
    endpointIsTracesUrl: full !== null,
    sampleRatio: ratio,
    respectParentSampled: respect,
    serviceName: env['OTEL_SERVICE_NAME'] || settings.serviceName || 'palisade-sidecar',
    ...(settings.upstream ? { upstream: settings.upstream } : {}),
    ...(headers ? { headers } : {}),
  };
}

// ---------------------------------------------------------------- on

const SAMPLED = 1; // TraceFlags.SAMPLED
const KIND_SERVER = 1 as SpanKindT;
const KIND_CLIENT = 2 as SpanKindT;
const KIND_INTERNAL = 0 as SpanKindT;
const STATUS_ERROR = 2; // SpanStatusCode.ERROR

/**
 * Stage times are kept as performance.now() values (ms since the time origin: small numbers, so
 * microseconds stay exact) and converted to epoch HrTime the way the SDK converts its own
 * timestamps (origin and offset split separately), so stage spans line up with the SDK's spans.
 */
function msToHr(ms: number): HrTime {
  const s = Math.trunc(ms / 1000);
  return [s, Math.round((ms - s * 1000) * 1e6)];
}
let originHr: HrTime | null = null;
function toHrTime(perfMs: number): HrTime {
  originHr ??= msToHr(performance.timeOrigin);
  const rel = msToHr(perfMs);
  let s = originHr[0] + rel[0];
  let ns = originHr[1] + rel[1];
  if (ns >= 1e9) {
    s += 1;
    ns -= 1e9;
  }
  return [s, ns];
}

/** A copy of a finished span whose context says "sampled", so the batch processor exports it. */
function asSampled(span: ReadableSpan): ReadableSpan {
  const sc = span.spanContext();
  const upgraded: SpanContext = { ...sc, traceFlags: sc.traceFlags | SAMPLED };
  return {
    name: span.name,
    kind: span.kind,
    spanContext: () => upgraded,
    ...(span.parentSpanContext ? { parentSpanContext: span.parentSpanContext } : {}),
    startTime: span.startTime,
    endTime: span.endTime,
    status: span.status,
    attributes: span.attributes,
    links: span.links,
    events: span.events,
    duration: span.duration,
    ended: span.ended,
    resource: span.resource,
    instrumentationScope: span.instrumentationScope,
    droppedAttributesCount: span.droppedAttributesCount,
    droppedEventsCount: span.droppedEventsCount,
    droppedLinksCount: span.droppedLinksCount,
  };
}

/** See the module comment: keeps unsampled requests whose verdict is deny. */
export class DenyKeepingProcessor implements SpanProcessor {
  readonly #inner: SpanProcessor;
  readonly #max: number;
  readonly #pending = new Map<string, ReadableSpan[]>();
  deniedKept = 0;
  discarded = 0;
  evicted = 0;

  constructor(inner: SpanProcessor, maxPendingTraces: number) {
    this.#inner = inner;
    this.#max = maxPendingTraces;
  }

  get pending(): number {
    return this.#pending.size;
  }

  onStart(span: Parameters<SpanProcessor['onStart']>[0], parentContext: Context): void {
    this.#inner.onStart(span, parentContext);
  }

  onEnd(span: ReadableSpan): void {
    const sc = span.spanContext();
    if ((sc.traceFlags & SAMPLED) !== 0) {
      this.#inner.onEnd(span);
      return;
    }
    const parent = span.parentSpanContext;
    const localRoot = parent === undefined || parent.isRemote === true;
    if (!localRoot) {
      let held = this.#pending.get(sc.traceId);
      if (held === undefined) {
        if (this.#pending.size >= this.#max) {
          const oldest = this.#pending.keys().next().value as string;
          this.#pending.delete(oldest);
          this.evicted++;
        }
        held = [];
        this.#pending.set(sc.traceId, held);
      }
      if (held.length < 128) held.push(span);
      return;
    }
    const held = this.#pending.get(sc.traceId);
    if (held !== undefined) this.#pending.delete(sc.traceId);
    if (span.attributes['palisade.verdict'] === 'deny') {
      this.deniedKept++;
      if (held !== undefined) for (const s of held) this.#inner.onEnd(asSampled(s));
      this.#inner.onEnd(asSampled(span));
    } else {
      this.discarded++;
    }
  }

  forceFlush(): Promise<void> {
    return this.#inner.forceFlush();
  }

  shutdown(): Promise<void> {
    this.#pending.clear();
    return this.#inner.shutdown();
  }
}

/**
 * Parent-based ratio sampling where "do not record" becomes "record only": every span records,
 * the sampled flag carries the head decision (DenyKeepingProcessor may still keep the request).
 */
class RecordAlwaysSampler implements Sampler {
  readonly #delegate: Sampler;
  readonly #recordOnly: number;
  readonly #ratio: number;
  constructor(delegate: Sampler, recordOnly: number, ratio: number) {
    this.#delegate = delegate;
    this.#recordOnly = recordOnly;
    this.#ratio = ratio;
  }
  shouldSample(context: Context, traceId: string, spanName: string, spanKind: SpanKindT, attributes: Attributes, links: Link[]): SamplingResult {
    const r = this.#delegate.shouldSample(context, traceId, spanName, spanKind, attributes, links);
    return r.decision === 0 ? { ...r, decision: this.#recordOnly } : r;
  }
  toString(): string {
    return `PalisadeRecordAlways{ratio=${this.#ratio},${this.#delegate.toString()}}`;
  }
}

/** Starts the OpenTelemetry SDK (only when an endpoint is configured) and returns the request helpers. */
export async function startTracing(options: TracingOptions): Promise<Tracing> {
  if (options.endpoint === null) return TRACING_OFF;
  // Loaded only when tracing is on: an unconfigured sidecar never pays for the SDK.
  const [{ NodeSDK, tracing, core, api, resources }, { OTLPTraceExporter }] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/exporter-trace-otlp-http'),
  ]);
  const url = options.endpointIsTracesUrl ? options.endpoint : `${options.endpoint.replace(/\/+$/, '')}/v1/traces`;
  // exporter-trace-otlp-http speaks OTLP/HTTP with JSON bodies.
  const exporter = new OTLPTraceExporter({ url, ...(options.headers ? { headers: { ...options.headers } } : {}), timeoutMillis: 10_000 });
  const batch = new tracing.BatchSpanProcessor(exporter, {
    scheduledDelayMillis: options.exportDelayMs ?? 2000,
    maxExportBatchSize: options.exportBatchSize ?? 512,
    maxQueueSize: options.maxQueueSize ?? 8192,
  });
  const processor = new DenyKeepingProcessor(batch, options.maxPendingTraces ?? 10_000);
  const ratio = new tracing.TraceIdRatioBasedSampler(options.sampleRatio);
  const parentBased = new tracing.ParentBasedSampler(
    options.respectParentSampled ? { root: ratio } : { root: ratio, remoteParentSampled: ratio, remoteParentNotSampled: ratio },
  );
  const sampler = new RecordAlwaysSampler(parentBased, tracing.SamplingDecision.RECORD, options.sampleRatio);
  const sdk = new NodeSDK({
    serviceName: options.serviceName,
    resource: resources.defaultResource(),
    sampler,
    spanProcessors: [processor],
    // Only traces: no auto-instrumentation (spans are created explicitly below, so nothing
    // monkey-patches http or undici), no OTel metrics (prom-client does those), no OTel logs.
    instrumentations: [],
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();

  const tracer: Tracer = api.trace.getTracer('palisade', '0.1.0');
  // Our own propagator rather than the global one, so OTEL_PROPAGATORS cannot change the wire format.
  const propagator = new core.W3CTraceContextPropagator();
  const getter = api.defaultTextMapGetter;
  const setter = api.defaultTextMapSetter;
  const ROOT = api.ROOT_CONTEXT;
  let upstreamAttrs: Attributes = {};
  if (options.upstream) {
    try {
      const u = new URL(options.upstream);
      upstreamAttrs = { 'server.address': u.hostname, 'server.port': Number(u.port) || (u.protocol === 'https:' ? 443 : 80) };
    } catch {
      // not a URL: leave the attributes out
    }
  }

  class Live implements RequestTrace {
    readonly traceId: string;
    readonly #server: Span;
    readonly #ctx: Context;
    readonly #method: string;
    #stagesAt = -1;
    #upstream: Span | null = null;
    #ended = false;

    constructor(headers: IncomingHttpHeaders, method: string, scheme: 'https' | 'http') {
      const parent = headers.traceparent === undefined ? ROOT : propagator.extract(ROOT, headers, getter);
      this.#method = method;
      this.#server = tracer.startSpan(
        method,
        { kind: KIND_SERVER, attributes: { 'http.request.method': method, 'url.scheme': scheme } },
        parent,
      );
      this.#ctx = api.trace.setSpan(ROOT, this.#server);
      this.traceId = this.#server.spanContext().traceId;
    }

    beginStages(): void {
      this.#stagesAt = performance.now();
    }

    injectUpstream(headers: IncomingHttpHeaders): IncomingHttpHeaders {
      // A retried upstream call keeps one span: the first attempt's.
      this.#upstream ??= tracer.startSpan(this.#method, { kind: KIND_CLIENT, attributes: { 'http.request.method': this.#method, ...upstreamAttrs } }, this.#ctx);
      delete headers.traceparent;
      delete headers.tracestate;
      propagator.inject(api.trace.setSpan(ROOT, this.#upstream), headers, setter);
      return headers;
    }

    end(rec: DecisionRecord): void {
      if (this.#ended) return;
      this.#ended = true;
      const server = this.#server;
      const route = rec.request.route;
      const status = rec.response.status;
      if (route !== null) server.updateName(`${this.#method} ${route}`);
      server.setAttributes({
        'url.path': rec.request.path,
        'http.response.status_code': status,
        'palisade.verdict': rec.verdict,
        'palisade.code': rec.code,
        'palisade.decided_by': rec.decidedBy,
        'palisade.request_id': rec.requestId,
        ...(route !== null ? { 'http.route': route } : {}),
        ...(rec.rule !== null ? { 'palisade.rule': rec.rule } : {}),
        ...(rec.policy !== null ? { 'palisade.policy.hash': rec.policy.hash } : {}),
        ...(rec.wouldDeny.length > 0 ? { 'palisade.would_deny': rec.wouldDeny.map((w) => w.code) } : {}),
      });
      // Server spans: 5xx is an error of ours; 4xx is the client's (OTel HTTP semantic conventions).
      if (status >= 500) server.setStatus({ code: STATUS_ERROR, message: rec.code });

      if (this.#stagesAt >= 0) {
        let t = this.#stagesAt;
        for (const st of rec.stages) {
          const end = t + st.us / 1000;
          const span = tracer.startSpan(
            `palisade.${st.stage}`,
            { kind: KIND_INTERNAL, startTime: toHrTime(t), attributes: { 'palisade.stage': st.stage, 'palisade.stage.outcome': st.outcome } },
            this.#ctx,
          );
          if (st.outcome === 'deny' && rec.decidedBy === st.stage) span.setAttribute('palisade.code', rec.code);
          if (st.outcome === 'error') span.setStatus({ code: STATUS_ERROR });
          span.end(toHrTime(end));
          t = end;
        }
      }

      const up = this.#upstream;
      if (up !== null) {
        if (rec.decidedBy === 'upstream') {
          up.setAttribute('error.type', rec.code);
          up.setStatus({ code: STATUS_ERROR, message: rec.code });
        } else {
          up.setAttribute('http.response.status_code', status);
          if (status >= 500) up.setStatus({ code: STATUS_ERROR });
        }
        up.end();
      }
      server.end();
    }
  }

  let shut = false;
  return {
    enabled: true,
    startRequest: (headers, method, scheme) => new Live(headers, method, scheme),
    stats: () => ({ deniedKept: processor.deniedKept, discarded: processor.discarded, evicted: processor.evicted, pending: processor.pending }),
    forceFlush: () => processor.forceFlush(),
    async shutdown() {
      if (shut) return;
      shut = true;
      await sdk.shutdown();
      // Release the API globals so a later startTracing in the same process (tests) can register.
      api.trace.disable();
      api.context.disable();
      api.propagation.disable();
    },
  };
}
