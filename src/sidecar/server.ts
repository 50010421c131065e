/**
 * The sidecar process: an mTLS listener (and, only if the policy allows it, a
 * plain-HTTP one) that runs every request through the policy's stages and
 * either answers with problem+json or streams it to the upstream; an admin
 * listener for probes; policy and certificate hot reload; exactly one
 * decision record per request.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import replyFrom from '@fastify/reply-from';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Settings } from '../config/settings.ts';
import type { DecisionRecord } from '../decision/record.ts';
import type { DecisionSink } from '../decision/sink.ts';
import { CODES, PalisadeError, type Code } from '../errors/codes.ts';
import { createClientIpResolver } from '../http/client-ip.ts';
import { normalizePath } from '../http/normalize-path.ts';
import { runPipeline } from '../pipeline/runner.ts';
import type { Decider, RequestContext, TlsFacts } from '../pipeline/types.ts';
import type { CompiledPolicy } from '../policy/compiled.ts';
import { readCredentials, type CredentialWatcher } from '../tls/credentials.ts';
import { tlsFactsOf } from '../tls/peer.ts';
import { requestId, uuidv7 } from '../util/ids.ts';
import { downstreamHeaders, upstreamHeaders } from './forward-headers.ts';
import type { SidecarObserver } from './observer.ts';
import { problemBody } from './problem.ts';
import { startPolicyHolder, type PolicyHolder } from './policy-holder.ts';
import type { Services } from './services.ts';
import { guardTlsListener, secureContextOptions, tlsFilesOf } from './tls-context.ts';
import { upstreamErrorCode } from './upstream-errors.ts';
import { sendUpstreamBody } from './upstream-response.ts';
import { NO_REQUEST_TRACE, TRACING_OFF, type RequestTrace, type Tracing } from '../telemetry/tracing.ts';

export interface SidecarOptions {
  readonly settings: Settings;
  readonly logger: Logger;
  readonly sink: DecisionSink;
  readonly services: Services;
  readonly observers?: readonly SidecarObserver[];
  /** Request tracing (src/telemetry/tracing.ts); off when absent. */
  readonly tracing?: Tracing;
  /** Adds routes to the admin listener before it listens (GET /metrics). */
  readonly adminRoutes?: (admin: FastifyInstance) => void;
  /** Extra readiness condition: returns why the sidecar is not ready yet, or null. */
  readonly notReadyReason?: () => string | null;
}

export interface Sidecar {
  readonly tlsPort: number;
  readonly adminPort: number;
  readonly plaintextPort: number | null;
  policy(): CompiledPolicy | null;
  /** Re-reads the policy file now. Resolves to the error if it was refused. */
  reloadPolicy(): Promise<Error | null>;
  /** Stops accepting, finishes in-flight requests, flushes decisions. */
  close(): Promise<void>;
  readonly admin: FastifyInstance;
}

/** Per-request outcome, filled as the request goes; turned into the decision record at the end. */
interface Outcome {
  ctx: RequestContext | null;
  policy: CompiledPolicy | null;
  decidedBy: Decider;
  code: Code;
  rule: string | null;
  detail: string | null;
  upstreamStart: bigint | null;
  upstreamMs: number | null;
  path: string;
  emitted: boolean;
  start: bigint;
  receivedAt: number;
  bytesWrittenAtStart: number;
  /** The request's trace (server span, stage and upstream spans); a no-op when tracing is off. */
  trace: RequestTrace;
}

declare module 'fastify' {
  interface FastifyRequest {
    palisade: Outcome | null;
  }
}

const TEXT_LIMIT = 2048;

// One policy facts object per loaded policy, shared by all its decision records (the OCSF
// mapping and the decision thread key their caches on the object, not its contents).
const policyFactsCache = new WeakMap<CompiledPolicy, NonNullable<DecisionRecord['policy']>>();
function policyOf(p: CompiledPolicy | null): DecisionRecord['policy'] {
  if (p === null) return null;
  let f = policyFactsCache.get(p);
  if (f === undefined) {
    f = { name: p.name, version: p.version, hash: p.hash };
    policyFactsCache.set(p, f);
  }
  return f;
}

export async function startSidecar(options: SidecarOptions): Promise<Sidecar> {
  const { settings, logger, sink, services } = options;
  // X-Forwarded-For is believed only from these peers (throws CONFIG_INVALID on a bad entry).
  const clientIpOf = createClientIpResolver(settings.trustedProxies);
  // A client error (timeout, bad framing) on a socket whose request is already in a
  // handler belongs to that request's one decision; later errors on it add nothing.
  const inflight = new WeakMap<Socket, FastifyRequest>();
  const clientErrored = new WeakSet<Socket>();
  // Node enforces headersTimeout/requestTimeout only when it sweeps its connections
  // (every 30 s by default); sweep often enough that a slow client is cut near its deadline.
  const connectionsCheckingInterval = Math.max(50, Math.min(1000, Math.floor(Math.min(settings.headersTimeoutMs, settings.requestTimeoutMs) / 4)));
  const observers = options.observers ?? [];
  const tracing = options.tracing ?? TRACING_OFF;
  const notify = <K extends keyof SidecarObserver>(k: K, ...args: Parameters<NonNullable<SidecarObserver[K]>>) => {
    for (const o of observers) {
      const f = o[k] as ((...a: unknown[]) => void) | undefined;
      if (f) {
        try {
          f.apply(o, args);
        } catch (err) {
          logger.error({ err }, `observer ${String(k)} failed`);
        }
      }
    }
  };

  // ---- policy ----
  const holder: PolicyHolder = await startPolicyHolder({
    file: settings.policyFile,
    services,
    logger,
    onLoaded: (p) => notify('onPolicyLoaded', p),
    onRefused: (e) => notify('onPolicyRefused', e),
  });

  // ---- TLS ----
  const creds = readCredentials(tlsFilesOf(settings));

  function emit(request: FastifyRequest, reply: FastifyReply | null, statusOverride?: number): void {
    const o = request.palisade;
    if (!o || o.emitted) return;
    o.emitted = true;
    const raw = request.raw;
    const ctx = o.ctx;
    const status = statusOverride ?? reply?.statusCode ?? CODES[o.code].status;
    const socket = raw.socket as Socket | undefined;
    const bytesOut = socket ? Math.max(0, socket.bytesWritten - o.bytesWrittenAtStart) : 0;
    const clen = Number(raw.headers['content-length'] ?? 0);
    const xff = raw.headers['x-forwarded-for'];
    const tls: TlsFacts | null = ctx ? ctx.tls : raw.socket && 'encrypted' in raw.socket ? tlsFactsOf(raw.socket as TLSSocket) : null;
    const record: DecisionRecord = {
      id: uuidv7(o.receivedAt),
      requestId: request.id,
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
        method: raw.method ?? '',
        path: o.path,
        host: (raw.headers.host ?? '').slice(0, 255),
        scheme: tls ? 'https' : 'http',
        httpVersion: raw.httpVersion,
        userAgent: raw.headers['user-agent']?.slice(0, 512) ?? null,
        contentType: raw.headers['content-type']?.slice(0, 255) ?? null,
        route: ctx?.route?.template ?? null,
        params: ctx?.route?.params ?? null,
        bytesIn: ctx?.bytesIn || (Number.isFinite(clen) ? clen : 0),
      },
      response: { status, bytesOut },
      stages: ctx?.timings ?? [],
      upstreamMs: o.upstreamMs,
      policy: policyOf(o.policy),
      detail: o.detail,
    };
    try {
      sink.write(record);
    } catch (err) {
      logger.error({ err, requestId: request.id, traceId: record.traceId }, 'decision sink failed');
    }
    notify('onDecision', record);
    notify('onRequestEnd');
    o.trace.end(record);
    if (settings.accessLog) {
      logger.info({ requestId: request.id, traceId: record.traceId, method: record.request.method, path: record.request.path, status, code: record.code, ms: record.durationMs }, 'request');
    }
  }

  function sendProblem(reply: FastifyReply, o: Outcome, code: Code, decidedBy: Decider, rule: string | null, detail?: string, extensions?: Readonly<Record<string, unknown>>, headers?: Readonly<Record<string, string>>): FastifyReply {
    o.code = code;
    o.decidedBy = decidedBy;
    o.rule = rule;
    o.detail = detail ?? null;
    if (headers) reply.headers(headers);
    return reply
      .code(CODES[code].status)
      .header('content-type', 'application/problem+json')
      .header('cache-control', 'no-store')
      .send(problemBody(code, o.ctx?.id ?? (reply.request.id as string), detail, extensions));
  }

  /**
   * The upstream call failed (reply-from's onError), or the body of an answer read whole did
   * (`copied`: the upstream's headers, already on the reply, which must not reach the client).
   */
  function upstreamFailed(rep: FastifyReply, o: Outcome, ctx: RequestContext, error: Error, copied?: Readonly<Record<string, unknown>>): void {
    const e = error as Error & { code?: string; cause?: NodeJS.ErrnoException };
    // A stage's stream wrapper aborted the upload (body over the limit): its deny, not an upstream fault.
    const late = (e instanceof PalisadeError ? e : e.cause instanceof PalisadeError ? e.cause : null) as (PalisadeError & { stage?: Decider; rule?: string | null }) | null;
    if (late) {
      sendProblem(rep, o, late.code, late.stage ?? 'forward', late.rule ?? null, late.message, undefined, { connection: 'close' });
      return;
    }
    const cause = e.cause?.code ?? e.code ?? '';
    const code = upstreamErrorCode(e);
    o.upstreamMs = Number(process.hrtime.bigint() - (o.upstreamStart ?? o.start)) / 1e6;
    notify('onUpstreamError', code);
    logger.warn({ requestId: ctx.id, traceId: ctx.traceId, code, cause }, 'upstream error');
    if (copied) {
      for (const name in copied) rep.removeHeader(name);
      if (ctx.responseHeaders) rep.headers(ctx.responseHeaders);
      rep.header('x-request-id', ctx.id);
    }
    sendProblem(rep, o, code, 'upstream', ctx.allowRule);
  }

  function buildApp(kind: 'tls' | 'plain'): FastifyInstance {
    const serverOptions = {
      logger: false,
      genReqId: () => requestId(),
      requestIdHeader: false as const,
      return503OnClosing: true,
      connectionTimeout: 0,
      keepAliveTimeout: settings.keepAliveTimeoutMs,
      requestTimeout: settings.requestTimeoutMs,
      // Node closes a client that has not sent full headers in time: slowloris.
      http: kind === 'plain' ? { connectionsCheckingInterval } : undefined,
      clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket) {
        // Only an HTTP-level failure is a request; a reset or TLS failure is not (TLS
        // handshake failures are counted by the tlsClientError handler instead).
        const isHttp = (err.code ?? '').startsWith('HPE_') || err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
        if (!isHttp) {
          socket.destroy();
          return;
        }
        const code: Code = err.code === 'HPE_HEADER_OVERFLOW' ? 'HEADERS_TOO_LARGE' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'REQUEST_TIMEOUT' : 'REQUEST_MALFORMED';
        if (clientErrored.has(socket)) {
          socket.destroy();
          return;
        }
        clientErrored.add(socket);
        const pending = inflight.get(socket);
        if (pending?.palisade && !pending.palisade.emitted) {
          Object.assign(pending.palisade, { code, decidedBy: 'request', detail: err.code ?? null });
          emit(pending, null, CODES[code].status);
        } else emitClientError(code, socket, err);
        if (socket.writable) {
          const id = requestId();
          const body = problemBody(code, id, err.code === 'HPE_HEADER_OVERFLOW' ? 'request headers too large' : code === 'REQUEST_TIMEOUT' ? 'request not received in time' : 'malformed HTTP request');
          socket.end(`HTTP/1.1 ${CODES[code].status} ${CODES[code].title}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
        } else {
          socket.destroy();
        }
      },
      ...(kind === 'tls'
        ? {
            https: { ...secureContextOptions(creds, settings), connectionsCheckingInterval },
          }
        : {}),
    };
    const app = Fastify(serverOptions as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;
    (app.server as Server).headersTimeout = settings.headersTimeoutMs;
    app.decorateRequest('palisade', null);
    // Bodies are not parsed by fastify: they stream to the upstream, and the
    // validation stage reads them itself (bounded) when a schema needs them.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));
    app.register(replyFrom, {
      base: settings.upstream,
      disableRequestLogging: true,
      undici: {
        connections: settings.upstreamConnections,
        pipelining: 1,
        connectTimeout: settings.upstreamConnectTimeoutMs,
        headersTimeout: settings.upstreamTimeoutMs,
        bodyTimeout: settings.upstreamTimeoutMs,
        keepAliveTimeout: 30_000,
      },
    });

    app.addHook('onRequest', (request, _reply, done) => {
      const socket = request.raw.socket as Socket;
      if (socket) inflight.set(socket, request);
      request.palisade = {
        ctx: null,
        policy: holder.current(),
        decidedBy: 'request',
        code: 'INTERNAL_ERROR',
        rule: null,
        detail: null,
        upstreamStart: null,
        upstreamMs: null,
        path: (request.raw.url ?? '').split('?')[0]!.slice(0, TEXT_LIMIT),
        emitted: false,
        start: process.hrtime.bigint(),
        receivedAt: Date.now(),
        bytesWrittenAtStart: socket?.bytesWritten ?? 0,
        trace: tracing.startRequest(request.raw.headers, request.raw.method ?? 'GET', kind === 'tls' ? 'https' : 'http'),
      };
      notify('onRequestStart');
      done();
    });
    app.addHook('onResponse', (request, reply, done) => {
      const o = request.palisade;
      if (o && o.upstreamStart !== null && o.upstreamMs === null) o.upstreamMs = Number(process.hrtime.bigint() - o.upstreamStart) / 1e6;
      emit(request, reply);
      done();
    });
    app.addHook('onRequestAbort', (request, done) => {
      const o = request.palisade;
      if (o && !o.emitted) {
        if (o.code === 'ALLOWED' || o.code === 'INTERNAL_ERROR') {
          o.code = 'REQUEST_TIMEOUT';
          o.detail = 'client closed the connection before the response';
        }
        emit(request, null, 499);
      }
      done();
    });

    app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, request, reply) => {
      const o = request.palisade;
      const fallback: Outcome = o ?? ({ ctx: null, policy: holder.current(), decidedBy: 'request', code: 'INTERNAL_ERROR', rule: null, detail: null, upstreamStart: null, upstreamMs: null, path: '', emitted: false, start: process.hrtime.bigint(), receivedAt: Date.now(), bytesWrittenAtStart: 0, trace: NO_REQUEST_TRACE } satisfies Outcome);
      if (reply.sent) return;
      if (err instanceof PalisadeError && err.code in CODES) return sendProblem(reply, fallback, err.code, fallback.decidedBy, null, err.message);
      if (err.code === 'FST_ERR_BAD_URL') return sendProblem(reply, fallback, 'PATH_INVALID', 'request', null, 'invalid URL');
      if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendProblem(reply, fallback, 'BODY_TOO_LARGE', 'request', null);
      if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return sendProblem(reply, fallback, 'REQUEST_MALFORMED', 'request', null);
      logger.error({ err, requestId: request.id, traceId: fallback.trace.traceId }, 'request failed');
      return sendProblem(reply, fallback, 'INTERNAL_ERROR', 'sidecar', null);
    });

    const handler = async (request: FastifyRequest, reply: FastifyReply) => {
      const o = request.palisade as Outcome;
      const p = holder.current();
      o.policy = p;
      if (!p) return sendProblem(reply, o, 'POLICY_UNAVAILABLE', 'sidecar', null);
      const raw = request.raw;
      const np = normalizePath(raw.url ?? '', { allowMatrixParams: p.allowMatrixParams });
      if (!np.ok) return sendProblem(reply, o, 'PATH_INVALID', 'request', null, np.reason);
      o.path = np.path;
      const socket = raw.socket as Socket;
      const tls = kind === 'tls' ? tlsFactsOf(socket as TLSSocket) : null;
      const ctx: RequestContext = {
        id: request.id,
        traceId: o.trace.traceId,
        start: o.start,
        receivedAt: o.receivedAt,
        method: raw.method ?? 'GET',
        path: np.path,
        query: np.query,
        host: raw.headers.host ?? '',
        headers: raw.headers,
        clientIp: clientIpOf(socket.remoteAddress ?? '', raw.headers['x-forwarded-for']),
        clientPort: socket.remotePort ?? 0,
        serverIp: socket.localAddress ?? '',
        serverPort: socket.localPort ?? 0,
        tls,
        policy: p,
        identity: null,
        route: p.routeOf(raw.method ?? 'GET', np.path),
        bytesIn: 0,
        body: null,
        bodyStream: request.body instanceof Readable ? request.body : null,
        responseTap: null,
        timings: [],
        wouldDeny: [],
        allowRule: null,
        responseHeaders: null,
      };
      o.ctx = ctx;
      o.trace.beginStages();
      const result = await runPipeline(p.stages, ctx);
      if (result.deny) {
        const d = result.deny;
        return sendProblem(reply, o, d.code, d.stage, d.rule, d.detail, d.extensions, d.headers);
      }
      o.code = 'ALLOWED';
      o.decidedBy = 'forward';
      o.rule = ctx.allowRule;
      if (ctx.responseHeaders) reply.headers(ctx.responseHeaders);
      reply.header('x-request-id', ctx.id);
      o.upstreamStart = process.hrtime.bigint();
      // A stage may have wrapped the body stream (the size limiter): forward the wrapper.
      if (ctx.bodyStream !== null && ctx.bodyStream !== request.body) request.body = ctx.bodyStream;
      const target = np.query ? `${np.forward}?${np.query}` : np.forward;
      const fromOpts: Parameters<FastifyReply['from']>[1] = {
        rewriteRequestHeaders: (_req, headers) => o.trace.injectUpstream(upstreamHeaders(ctx, headers)),
        rewriteHeaders: (headers) => downstreamHeaders(headers),
        onResponse: (_req, rep, res) => {
          const headers = (res as unknown as { headers: RequestContext['headers'] }).headers;
          if (ctx.responseTap) return void rep.send(ctx.responseTap(res.statusCode, headers, res.stream));
          sendUpstreamBody(rep, ctx.method, res.statusCode, headers, res.stream as Readable, (err) => upstreamFailed(rep as FastifyReply, o, ctx, err, headers));
        },
        onError: (rep, { error }) => upstreamFailed(rep as FastifyReply, o, ctx, error),
      };
      if (ctx.body) {
        ctx.bytesIn = ctx.body.length;
        return reply.from(target, { ...fromOpts, body: ctx.body, contentType: raw.headers['content-type'] ?? 'application/octet-stream' });
      }
      return reply.from(target, fromOpts);
    };
    app.route({ method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'], url: '/*', handler });
    app.route({ method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'], url: '/', handler });
    app.setNotFoundHandler(handler);
    return app;
  }

  function emitClientError(code: Code, socket: Socket, err: NodeJS.ErrnoException): void {
    // A request too broken to parse still yields its one decision record.
    const now = Date.now();
    const record: DecisionRecord = {
      id: uuidv7(now),
      requestId: requestId(),
      traceId: null,
      time: now,
      durationMs: 0,
      verdict: 'deny',
      decidedBy: 'request',
      code,
      rule: null,
      wouldDeny: [],
      identity: null,
      client: { ip: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, forwardedFor: [] },
      server: { ip: socket.localAddress ?? '', port: socket.localPort ?? 0 },
      tls: 'encrypted' in socket ? tlsFactsOf(socket as TLSSocket) : null,
      request: { method: '', path: '', host: '', scheme: 'encrypted' in socket ? 'https' : 'http', httpVersion: '', userAgent: null, contentType: null, route: null, params: null, bytesIn: 0 },
      response: { status: CODES[code].status, bytesOut: 0 },
      stages: [],
      upstreamMs: null,
      policy: policyOf(holder.current()),
      detail: err.code ?? 'client error',
    };
    sink.write(record);
    notify('onDecision', record);
  }

  const app = buildApp('tls');
  const credWatcher: CredentialWatcher = guardTlsListener(app.server as Server, creds, settings, logger, notify);
  await app.listen({ host: settings.listenHost, port: settings.listenPort });
  const tlsPort = (app.server.address() as { port: number }).port;

  let plain: FastifyInstance | null = null;
  if (holder.current()?.allowPlaintext) {
    plain = buildApp('plain');
    await plain.listen({ host: settings.listenHost, port: settings.plaintextPort });
  }

  // ---- admin ----
  let closing = false;
  let closed: Promise<void> | null = null;
  const admin = Fastify({ logger: false });
  admin.get('/livez', async () => ({ status: 'ok' }));
  admin.get('/readyz', async (_req, reply) => {
    const p = holder.current();
    if (closing || !p) return reply.code(503).send({ status: 'not ready', reason: closing ? 'shutting down' : 'no policy' });
    const extra = options.notReadyReason?.() ?? null;
    if (extra) return reply.code(503).send({ status: 'not ready', reason: extra });
    return { status: 'ready', policy: { name: p.name, version: p.version, hash: p.hash } };
  });
  options.adminRoutes?.(admin);
  await admin.listen({ host: settings.adminHost, port: settings.adminPort });
  const adminPort = (admin.server.address() as { port: number }).port;

  logger.info({ tlsPort, adminPort, plaintextPort: plain ? (plain.server.address() as { port: number }).port : null, upstream: settings.upstream }, 'sidecar listening');

  return {
    tlsPort,
    adminPort,
    plaintextPort: plain ? (plain.server.address() as { port: number }).port : null,
    admin,
    policy: () => holder.current(),
    reloadPolicy: holder.reload,
    close() {
      closed ??= shutdown();
      return closed;
    },
  };

  async function shutdown(): Promise<void> {
    {
      closing = true;
      holder.close();
      credWatcher.close();
      await Promise.all([app.close(), plain?.close()]);
      await sink.close();
      // The last word on "lose nothing": every record accepted is delivered, or counted as dropped.
      const st = sink.stats();
      logger.info({ accepted: st.accepted, delivered: st.delivered, dropped: st.dropped, buffered: st.buffered }, 'decision sink closed');
      await admin.close();
    }
  }
}

