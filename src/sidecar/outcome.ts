/**
 * The per-request outcome and the one function that turns it into a decision record.
 *
 * Every path ends here: allowed and forwarded, denied by a stage, refused by the HTTP layer,
 * too malformed to parse (no request object at all, only a socket), the client leaving, the
 * upstream failing. An outcome is created by `openOutcome` (a parsed request) or
 * `socketOutcome` (a socket whose bytes never made a request); its decision is set by
 * `decide` and `clientLeft`; `record` writes it once (the `emitted` flag), with the sink
 * guarded, so a failing sink never fails a request and nothing is recorded twice.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { DecisionRecord } from '../decision/record.ts';
import type { DecisionSink } from '../decision/sink.ts';
import type { Code } from '../errors/codes.ts';
import type { Decider, RequestContext } from '../pipeline/types.ts';
import type { CompiledPolicy } from '../policy/compiled.ts';
import { NO_REQUEST_TRACE, type RequestTrace } from '../telemetry/tracing.ts';
import { tlsFactsOf } from '../tls/peer.ts';
import { requestId as newRequestId, uuidv7 } from '../util/ids.ts';
import type { SidecarObserver } from './observer.ts';

/** Status recorded when the client left before its answer (nginx's "client closed request"). */
export const CLIENT_CLOSED_STATUS = 499;

/** Longest raw request target recorded when it could not be normalized, characters. */
const TEXT_LIMIT = 2048;

export interface Outcome {
  readonly requestId: string;
  /** The parsed request, or null for a socket whose bytes never made one. */
  readonly raw: IncomingMessage | null;
  readonly socket: Socket | null;
  readonly scheme: 'https' | 'http';
  /** process.hrtime.bigint() and epoch ms when the request arrived. */
  readonly start: bigint;
  readonly receivedAt: number;
  readonly bytesWrittenAtStart: number;
  /** The request's trace (server span, stage and upstream spans); a no-op when tracing is off. */
  readonly trace: RequestTrace;
  /** True when onRequestStart was announced: onRequestEnd is then owed once. */
  readonly announced: boolean;
  policy: CompiledPolicy | null;
  /** Normalized path once known; until then the raw target without its query. */
  path: string;
  ctx: RequestContext | null;
  code: Code;
  decidedBy: Decider;
  rule: string | null;
  detail: string | null;
  upstreamStart: bigint | null;
  upstreamMs: number | null;
  emitted: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    palisade: Outcome | null;
  }
}

/** The raw target without its query, cut at TEXT_LIMIT (no array made, as split would). */
function pathOfTarget(url: string): string {
  const q = url.indexOf('?');
  return url.slice(0, Math.min(q < 0 ? url.length : q, TEXT_LIMIT));
}

/** The outcome of a parsed request, until something decides: an internal error. */
export function openOutcome(raw: IncomingMessage, id: string, policy: CompiledPolicy | null, trace: RequestTrace, scheme: 'https' | 'http', announced: boolean): Outcome {
  const socket = (raw.socket as Socket | null) ?? null;
  return {
    requestId: id,
    raw,
    socket,
    scheme,
    start: process.hrtime.bigint(),
    receivedAt: Date.now(),
    bytesWrittenAtStart: socket?.bytesWritten ?? 0,
    trace,
    announced,
    policy,
    path: pathOfTarget(raw.url ?? ''),
    ctx: null,
    code: 'INTERNAL_ERROR',
    decidedBy: 'request',
    rule: null,
    detail: null,
    upstreamStart: null,
    upstreamMs: null,
    emitted: false,
  };
}

/** The outcome of bytes that never made a request (bad framing, oversized headers): decided by the HTTP layer. */
export function socketOutcome(socket: Socket, policy: CompiledPolicy | null, code: Code, detail: string): Outcome {
  return {
    requestId: newRequestId(),
    raw: null,
    socket,
    scheme: 'encrypted' in socket ? 'https' : 'http',
    start: process.hrtime.bigint(),
    receivedAt: Date.now(),
    bytesWrittenAtStart: socket.bytesWritten,
    trace: NO_REQUEST_TRACE,
    announced: false,
    policy,
    path: '',
    ctx: null,
    code,
    decidedBy: 'request',
    rule: null,
    detail,
    upstreamStart: null,
    upstreamMs: null,
    emitted: false,
  };
}

/** Sets the decision (the last word before the record is written wins). */
export function decide(o: Outcome, code: Code, decidedBy: Decider, rule: string | null, detail: string | null): void {
  o.code = code;
  o.decidedBy = decidedBy;
  o.rule = rule;
  o.detail = detail;
}

/**
 * The client left before its answer: a decision, not a fault. An answer that was not
 * decided otherwise (allowed, or an error the client left before seeing) becomes the abort;
 * a deny already decided stays what it was.
 */
export function clientLeft(o: Outcome): void {
  if (o.code === 'ALLOWED' || o.code === 'INTERNAL_ERROR') {
    o.code = 'REQUEST_TIMEOUT';
    o.detail = 'client closed the connection before the response';
  }
}

/** Starts or ends the upstream clock (connect to last byte). */
export function upstreamStarted(o: Outcome): void {
  o.upstreamStart = process.hrtime.bigint();
}
export function upstreamEnded(o: Outcome): void {
  if (o.upstreamMs === null) o.upstreamMs = Number(process.hrtime.bigint() - (o.upstreamStart ?? o.start)) / 1e6;
}

// One policy facts object per loaded policy, shared by all its decision records (the OCSF
// mapping and the decision thread key their caches on the object, not its contents).
const policyFactsCache = new WeakMap<CompiledPolicy, NonNullable<DecisionRecord['policy']>>();
function policyFacts(p: CompiledPolicy | null): DecisionRecord['policy'] {
  if (p === null) return null;
  let f = policyFactsCache.get(p);
  if (f === undefined) {
    f = p.signature.keyId !== null ? { name: p.name, version: p.version, hash: p.hash, keyId: p.signature.keyId } : { name: p.name, version: p.version, hash: p.hash };
    policyFactsCache.set(p, f);
  }
  return f;
}

/** THE decision record builder: the only place a DecisionRecord is made in the sidecar. */
export function decisionRecord(o: Outcome, status: number): DecisionRecord {
  const raw = o.raw;
  const ctx = o.ctx;
  const socket = o.socket;
  const headers = raw?.headers;
  const bytesOut = socket ? Math.max(0, socket.bytesWritten - o.bytesWrittenAtStart) : 0;
  const clen = Number(headers?.['content-length'] ?? 0);
  const xff = headers?.['x-forwarded-for'];
  const tls = ctx ? ctx.tls : socket && 'encrypted' in socket ? tlsFactsOf(socket as TLSSocket) : null;
  return {
    id: uuidv7(o.receivedAt),
    requestId: o.requestId,
    traceId: o.trace.traceId,
    time: o.receivedAt,
    durationMs: Number(process.hrtime.bigint() - o.start) / 1e6,
    verdict: o.code === 'ALLOWED' ? 'allow' : 'deny',
    decidedBy: o.decidedBy,
    code: o.code,
    rule: o.rule,
    wouldDeny: ctx?.wouldDeny ?? [],
    identity: ctx?.identity ?? null,
    client: {
      ip: ctx?.clientIp ?? socket?.remoteAddress ?? '',
      port: ctx?.clientPort ?? socket?.remotePort ?? 0,
      forwardedFor: typeof xff === 'string' ? xff.split(',').map((s) => s.trim()).filter(Boolean).slice(0, 16) : [],
    },
    server: { ip: socket?.localAddress ?? '', port: socket?.localPort ?? 0 },
    tls,
    request: {
      // The method judged (an applied override, spec.headers.methodOverride), else the request's.
      method: ctx?.method ?? raw?.method ?? '',
      path: o.path,
      host: (headers?.host ?? '').slice(0, 255),
      scheme: tls ? 'https' : o.scheme,
      httpVersion: raw?.httpVersion ?? '',
      userAgent: headers?.['user-agent']?.slice(0, 512) ?? null,
      contentType: headers?.['content-type']?.slice(0, 255) ?? null,
      route: ctx?.route?.template ?? null,
      params: ctx?.route?.params ?? null,
      bytesIn: ctx?.bytesIn || (Number.isFinite(clen) ? clen : 0),
    },
    response: { status, bytesOut },
    stages: ctx?.timings ?? [],
    upstreamMs: o.upstreamMs,
    policy: policyFacts(o.policy),
    detail: o.detail,
    ...(ctx?.quotaCharges ? { quotas: ctx.quotaCharges } : {}),
  };
}

export type Notify = <K extends keyof SidecarObserver>(k: K, ...args: Parameters<NonNullable<SidecarObserver[K]>>) => void;

/** Writes an outcome's decision record, once: sink (guarded), observers, trace, access log. */
export type Recorder = (o: Outcome, status: number) => void;

export function createRecorder(sink: DecisionSink, logger: Logger, notify: Notify, accessLog: boolean): Recorder {
  return (o, status) => {
    if (o.emitted) return;
    o.emitted = true;
    const record = decisionRecord(o, status);
    try {
      sink.write(record);
    } catch (err) {
      logger.error({ err, requestId: o.requestId, traceId: record.traceId }, 'decision sink failed');
    }
    notify('onDecision', record);
    if (o.announced) notify('onRequestEnd');
    o.trace.end(record);
    if (accessLog) {
      // A deny's rule and reason are for operators: here and in the event, never in the response.
      const why = record.verdict === 'deny' ? { rule: record.rule, detail: record.detail } : null;
      logger.info({ requestId: o.requestId, traceId: record.traceId, method: record.request.method, path: record.request.path, status, code: record.code, ...why, ms: record.durationMs }, 'request');
    }
  };
}
