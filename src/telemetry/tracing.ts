/**
 * OpenTelemetry traces of the sidecar: one SERVER span per request (continuing the client's W3C
 * traceparent), one INTERNAL span per pipeline stage, one CLIENT span for the upstream call whose
 * context goes to the upstream in traceparent/tracestate. The trace id lands in the decision
 * record, so a SIEM event links to its trace.
 *
 * Exported API:
 *
 *   const tracing = await startTracing(tracingOptionsFromEnv(process.env));   // TRACING_OFF if no endpoint
 *   // per request (src/sidecar/app.ts, handler.ts, outcome.ts):
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
 * On: sampling, and "a denied request is always recorded". A head sampler decides when a span
 * starts, but the verdict is known only at the end of the request. So no span is started while
 * the request runs. At the start, the request gets its ids (the client's trace id or a new one,
 * a span id for the SERVER span) and its head decision: the client's sampled flag when it is
 * trusted (respectParentSampled), else a ratio on the trace id. The upstream gets a traceparent
 * with a pre-chosen CLIENT span id and that decision as its sampled flag. At the end, with the
 * decision record in hand, the spans are built with the SDK only if the request is sampled or
 * denied, with their measured start and end times and exactly the pre-chosen ids (a slot id
 * generator hands the SDK the ids the upstream already saw); the SDK sampler is always-on, since
 * the choice is already made. An allowed, unsampled request costs a few id and string operations
 * and never touches the SDK; the exported spans go through the SDK's batch processor and OTLP/HTTP
 * (JSON) exporter off the request path.
 *
 * Stage spans are laid out from RequestContext.timings (the runner already measures each stage):
 * starting at beginStages(), back to back with their measured durations, so the stages pay no
 * span or context work; sub-microsecond gaps between stages are folded in.
 */
import { randomFillSync } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Attributes, Context, ContextManager, SpanContext, SpanKind as SpanKindT, Tracer, HrTime } from '@opentelemetry/api';
import type { DecisionRecord } from '../decision/record.ts';

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
  /** Requests exported because they were sampled. */
  readonly sampled: number;
  /** Unsampled requests exported because they were denied. */
  readonly deniedKept: number;
  /** Unsampled allowed requests, never turned into spans. */
  readonly discarded: number;
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
  stats: () => ({ sampled: 0, deniedKept: 0, discarded: 0 }),
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

const KIND_SERVER = 1 as SpanKindT;
const KIND_CLIENT = 2 as SpanKindT;
const KIND_INTERNAL = 0 as SpanKindT;
const STATUS_ERROR = 2; // SpanStatusCode.ERROR

// Ids come from a pool of random bytes refilled 4 KiB at a time: one native hex conversion per id.
// crypto randomness, though ids are not secrets: it is as cheap as Math.random here.
const idPool = Buffer.allocUnsafe(4096);
let idPos = idPool.length;
function randomHex(chars: 16 | 32): string {
  const bytes = chars / 2;
  if (idPos + bytes > idPool.length) {
    randomFillSync(idPool);
    idPos = 0;
  }
  const id = idPool.toString('hex', idPos, idPos + bytes);
  idPos += bytes;
  // All zeros is an invalid W3C id (probability 2^-64 or less; still, never send one).
  return id === ZERO_TRACE || id === ZERO_SPAN ? randomHex(chars) : id;
}

/**
 * Hands the SDK pre-chosen ids: set `trace`/`span` right before tracer.startSpan (synchronous, so
 * nothing can interleave); otherwise random ids.
 */
class SlotIdGenerator {
  trace: string | null = null;
  span: string | null = null;
  generateTraceId(): string {
    const t = this.trace;
    this.trace = null;
    return t ?? randomHex(32);
  }
  generateSpanId(): string {
    const s = this.span;
    this.span = null;
    return s ?? randomHex(16);
  }
}

/** Head decision on the trace id's last 14 hex digits (56 random bits in W3C trace context level 2). */
function ratioSampled(traceId: string, ratio: number): boolean {
  if (ratio >= 1) return true;
  if (ratio <= 0) return false;
  return Number.parseInt(traceId.slice(18), 16) < ratio * 2 ** 56;
}

/**
 * Stage and span times are kept as performance.now() values (ms since the time origin: small
 * numbers, so microseconds stay exact) and converted to epoch HrTime the way the SDK converts its
 * own timestamps (origin and offset split separately).
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

/** Starts the OpenTelemetry SDK (only when an endpoint is configured) and returns the request helpers. */
export async function startTracing(options: TracingOptions): Promise<Tracing> {
  if (options.endpoint === null) return TRACING_OFF;
  if (!(options.sampleRatio >= 0 && options.sampleRatio <= 1)) throw new RangeError(`sampleRatio must be between 0 and 1, got ${options.sampleRatio}`);
  // Loaded only when tracing is on: an unconfigured sidecar never pays for the SDK. The trace SDK
  // classes come through sdk-node's re-export so they are the exact version NodeSDK is built on.
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
  const ids = new SlotIdGenerator();
  const sdk = new NodeSDK({
    serviceName: options.serviceName,
    resource: resources.defaultResource(),
    // Spans are only ever created for requests already chosen for export (see the module comment).
    sampler: new tracing.AlwaysOnSampler(),
    idGenerator: ids,
    spanProcessors: [batch],
    // No global context manager (AsyncLocalStorage on every async hop) and no global propagator:
    // spans are parented explicitly and traceparent is written here. NodeSDK documents null as
    // "do not register"; its type does not admit it.
    contextManager: null as unknown as ContextManager,
    textMapPropagator: null,
    // Only traces: no auto-instrumentation (nothing monkey-patches http or undici), no OTel
    // metrics (prom-client does those), no OTel logs.
    instrumentations: [],
    metricReaders: [],
    logRecordProcessors: [],
  });
  sdk.start();

  const tracer: Tracer = api.trace.getTracer('palisade', '0.1.0');
  const ROOT = api.ROOT_CONTEXT;
  const ratio = options.sampleRatio;
  const respectParent = options.respectParentSampled;
  let upstreamAttrs: Attributes = {};
  if (options.upstream) {
    try {
      const u = new URL(options.upstream);
      upstreamAttrs = { 'server.address': u.hostname, 'server.port': Number(u.port) || (u.protocol === 'https:' ? 443 : 80) };
    } catch {
      // not a URL: leave the attributes out
    }
  }
  const counts = { sampled: 0, deniedKept: 0, discarded: 0 };

  class Live implements RequestTrace {
    readonly traceId: string;
    readonly #serverSpanId = randomHex(16);
    readonly #method: string;
    readonly #scheme: 'https' | 'http';
    readonly #start = performance.now();
    /** The client's span (from traceparent), or null for a root request. */
    readonly #parentSpanId: string | null;
    readonly #parentSampled: boolean;
    readonly #traceState: string | null;
    readonly #sampled: boolean;
    #stagesAt = -1;
    #upstreamSpanId: string | null = null;
    #upstreamAt = 0;
    #ended = false;

    constructor(headers: IncomingHttpHeaders, method: string, scheme: 'https' | 'http') {
      this.#method = method;
      this.#scheme = scheme;
      const tp = headers.traceparent;
      const m = typeof tp === 'string' && traceIdFromTraceparent(tp) !== null ? TRACEPARENT.exec(tp.trim()) : null;
      if (m !== null) {
        this.traceId = m[2]!;
        this.#parentSpanId = m[3]!;
        this.#parentSampled = (Number.parseInt(m[4]!, 16) & 1) === 1;
        const ts = headers.tracestate;
        this.#traceState = typeof ts === 'string' && ts !== '' ? ts : null;
      } else {
        this.traceId = randomHex(32);
        this.#parentSpanId = null;
        this.#parentSampled = false;
        this.#traceState = null;
      }
      this.#sampled = m !== null && respectParent ? this.#parentSampled : ratioSampled(this.traceId, ratio);
    }

    beginStages(): void {
      this.#stagesAt = performance.now();
    }

    injectUpstream(headers: IncomingHttpHeaders): IncomingHttpHeaders {
      // A retried upstream call keeps one span: the first attempt's.
      if (this.#upstreamSpanId === null) {
        this.#upstreamSpanId = randomHex(16);
        this.#upstreamAt = performance.now();
      }
      headers.traceparent = `00-${this.traceId}-${this.#upstreamSpanId}-${this.#sampled ? '01' : '00'}`;
      if (this.#traceState !== null) headers.tracestate = this.#traceState;
      else delete headers.tracestate;
      return headers;
    }

    end(rec: DecisionRecord): void {
      if (this.#ended) return;
      this.#ended = true;
      if (!this.#sampled && rec.verdict !== 'deny') {
        counts.discarded++;
        return;
      }
      if (this.#sampled) counts.sampled++;
      else counts.deniedKept++;
      const now = performance.now();
      const route = rec.request.route;
      const status = rec.response.status;
      let parent: Context = ROOT;
      if (this.#parentSpanId !== null) {
        const sc: SpanContext = {
          traceId: this.traceId,
          spanId: this.#parentSpanId,
          traceFlags: this.#parentSampled ? 1 : 0,
          isRemote: true,
          ...(this.#traceState !== null ? { traceState: new core.TraceState(this.#traceState) } : {}),
        };
        parent = api.trace.setSpanContext(ROOT, sc);
      }
      ids.trace = this.traceId;
      ids.span = this.#serverSpanId;
      const server = tracer.startSpan(
        route !== null ? `${this.#method} ${route}` : this.#method,
        {
          kind: KIND_SERVER,
          startTime: toHrTime(this.#start),
          attributes: {
            'http.request.method': this.#method,
            'url.scheme': this.#scheme,
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
          },
        },
        parent,
      );
      // Server spans: 5xx is an error of ours; 4xx is the client's (OTel HTTP semantic conventions).
      if (status >= 500) server.setStatus({ code: STATUS_ERROR, message: rec.code });
      const ctx = api.trace.setSpan(ROOT, server);

      if (this.#stagesAt >= 0) {
        let t = this.#stagesAt;
        for (const st of rec.stages) {
          const end = t + st.us / 1000;
          const span = tracer.startSpan(`palisade.${st.stage}`, { kind: KIND_INTERNAL, startTime: toHrTime(t), attributes: { 'palisade.stage': st.stage, 'palisade.stage.outcome': st.outcome } }, ctx);
          if (st.outcome === 'deny' && rec.decidedBy === st.stage) span.setAttribute('palisade.code', rec.code);
          if (st.outcome === 'error') span.setStatus({ code: STATUS_ERROR });
          span.end(toHrTime(end));
          t = end;
        }
      }

      if (this.#upstreamSpanId !== null) {
        ids.span = this.#upstreamSpanId;
        const up = tracer.startSpan(this.#method, { kind: KIND_CLIENT, startTime: toHrTime(this.#upstreamAt), attributes: { 'http.request.method': this.#method, ...upstreamAttrs } }, ctx);
        if (rec.decidedBy === 'upstream') {
          up.setAttribute('error.type', rec.code);
          up.setStatus({ code: STATUS_ERROR, message: rec.code });
        } else {
          up.setAttribute('http.response.status_code', status);
          if (status >= 500) up.setStatus({ code: STATUS_ERROR });
        }
        up.end(toHrTime(rec.upstreamMs !== null ? Math.min(now, this.#upstreamAt + rec.upstreamMs) : now));
      }
      server.end(toHrTime(now));
    }
  }

  let shut = false;
  return {
    enabled: true,
    startRequest: (headers, method, scheme) => new Live(headers, method, scheme),
    stats: () => ({ ...counts }),
    forceFlush: () => batch.forceFlush(),
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
