/**
 * The request handler: context -> runPipeline -> forward. Everything a request meets
 * between fastify's routing and the upstream's answer, and nothing else: the decision it
 * reaches is written into the request's outcome (outcome.ts), which is recorded when the
 * response ends.
 */
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { PalisadeError } from '../errors/codes.ts';
import type { ClientIpResolver } from '../http/client-ip.ts';
import { normalizePath } from '../http/normalize-path.ts';
import { runPipeline, type PipelineResult } from '../pipeline/runner.ts';
import type { Decider, RequestContext } from '../pipeline/types.ts';
import type { CompiledPolicy } from '../policy/compiled.ts';
import { tlsFactsOf } from '../tls/peer.ts';
import { clientGone, recordAbort, sendProblem } from './client-errors.ts';
import { downstreamHeaders, upstreamHeaders } from './forward-headers.ts';
import { decide, upstreamEnded, upstreamStarted, type Outcome, type Recorder } from './outcome.ts';
import { upstreamErrorCode } from './upstream-errors.ts';
import { sendUpstreamBody } from './upstream-response.ts';

export interface HandlerDeps {
  readonly kind: 'tls' | 'plain';
  readonly logger: Logger;
  readonly record: Recorder;
  readonly policy: () => CompiledPolicy | null;
  readonly clientIpOf: ClientIpResolver;
}

/**
 * Returns nothing, on purpose: the answer is sent by reply.from or sendProblem. A handler that
 * returns the reply, or a promise (an async function), has fastify wait for the response's end
 * through the reply's then(): an end-of-stream watcher with its listeners on every response.
 */
type Handler = (request: FastifyRequest, reply: FastifyReply) => void;
type FromOptions = NonNullable<Parameters<FastifyReply['from']>[1]>;

export function createRequestHandler(deps: HandlerDeps): Handler {
  const { kind, logger, record, clientIpOf } = deps;

  /**
   * The upstream call failed (reply-from's onError), or the body of an answer read whole did
   * (`copied`: the upstream's headers, already on the reply, which must not reach the client).
   */
  function upstreamFailed(rep: FastifyReply, o: Outcome, ctx: RequestContext, error: Error, copied?: Readonly<Record<string, unknown>>): void {
    const e = error as Error & { code?: string; cause?: NodeJS.ErrnoException };
    // A stage's stream wrapper aborted the upload (body over the limit): its deny, not an upstream fault.
    const late = (e instanceof PalisadeError ? e : e.cause instanceof PalisadeError ? e.cause : null) as (PalisadeError & { stage?: Decider; rule?: string | null; clientDetail?: string }) | null;
    if (late) {
      sendProblem(rep, o, late.code, late.stage ?? 'forward', late.rule ?? null, late.clientDetail, undefined, { connection: 'close' }, late.message);
      return;
    }
    upstreamEnded(o);
    // The client left mid-upload or mid-answer: the call failed because of it, not the upstream.
    if (clientGone(rep.request)) return recordAbort(o, record, logger, `upstream call: ${e.cause?.code ?? e.code ?? e.name}`);
    const code = upstreamErrorCode(e);
    const cause = e.cause?.code ?? e.code ?? '';
    logger.warn({ requestId: ctx.id, traceId: ctx.traceId, code, cause }, 'upstream error');
    if (copied) {
      for (const name in copied) rep.removeHeader(name);
      if (ctx.responseHeaders) rep.headers(ctx.responseHeaders);
    }
    // The cause (ECONNREFUSED...) is for the event; the client gets the code only.
    sendProblem(rep, o, code, 'upstream', ctx.allowRule, undefined, undefined, undefined, cause ? `upstream: ${cause}` : undefined);
  }

  /** A whole-read upstream body failed midway (sendUpstreamBody). */
  const bodyFailed = (err: Error, rep: FastifyReply, headers: RequestContext['headers']) => {
    const o = rep.request.palisade as Outcome;
    upstreamFailed(rep, o, o.ctx as RequestContext, err, headers);
  };
  const fromPlain: FromOptions = {
    rewriteRequestHeaders: (request, headers) => {
      const o = request.palisade as Outcome;
      return o.trace.injectUpstream(upstreamHeaders(o.ctx as RequestContext, headers));
    },
    rewriteHeaders: downstreamHeaders,
    onResponse: (request, rep, res) => {
      const ctx = (request.palisade as Outcome).ctx as RequestContext;
      const headers = (res as unknown as { headers: RequestContext['headers'] }).headers;
      if (ctx.responseTap) return void rep.send(ctx.responseTap(res.statusCode, headers, res.stream));
      sendUpstreamBody(rep as FastifyReply, ctx.method, res.statusCode, headers, res.stream as Readable, bodyFailed);
    },
    onError: (rep, { error }) => {
      const o = (rep as FastifyReply).request.palisade as Outcome;
      upstreamFailed(rep as FastifyReply, o, o.ctx as RequestContext, error);
    },
  };
  // The path goes to reply-from alone and the raw query beside it: reply-from percent-decodes
  // the whole target it is given, so a query it could not decode (`?q=%zz`) failed the request
  // with a 500, and one that decodes to `../` (`?next=..%2Fx`) was refused as a path traversal.
  // The sidecar judges the normalized path; the query is the service's, forwarded as it came.
  const fromWithQuery: FromOptions = { ...fromPlain, queryString: (_search, _url, request) => ((request.palisade as Outcome).ctx as RequestContext).query };

  /** A stage, or the forwarding, failed after the pipeline awaited (past fastify's own catch): the error handler answers. */
  function stageFailed(reply: FastifyReply, err: unknown): void {
    if (reply.sent) return void logger.error({ err, requestId: reply.request.id }, 'request failed after its answer was sent');
    reply.send(err instanceof Error ? err : new Error(String(err)));
  }

  /** After the stages: the enforced deny's problem answer, or the request forwarded. */
  function proceed(request: FastifyRequest, reply: FastifyReply, o: Outcome, ctx: RequestContext, result: PipelineResult, target: string, query: string, methodOverride: string | null): void {
    if (result.deny) {
      const d = result.deny;
      sendProblem(reply, o, d.code, d.stage, d.rule, d.detail, d.extensions, d.headers, d.reason);
      return;
    }
    decide(o, 'ALLOWED', 'forward', ctx.allowRule, null);
    if (ctx.responseHeaders) reply.headers(ctx.responseHeaders);
    reply.header('x-request-id', ctx.id);
    upstreamStarted(o);
    // A stage may have wrapped the body stream (the size limiter): forward the wrapper.
    if (ctx.bodyStream !== null && ctx.bodyStream !== request.body) request.body = ctx.bodyStream;
    // The shared options (no closure made per request: each hook finds the request's context on it).
    let fromOpts: FromOptions = query ? fromWithQuery : fromPlain;
    // An applied method override: the upstream receives the method every stage judged.
    if (methodOverride !== null) fromOpts = { ...fromOpts, method: methodOverride as 'PUT' };
    if (ctx.body) {
      ctx.bytesIn = ctx.body.length;
      reply.from(target, { ...fromOpts, body: ctx.body, contentType: request.raw.headers['content-type'] ?? 'application/octet-stream' });
      return;
    }
    reply.from(target, fromOpts);
  }

  return (request, reply) => {
    const o = request.palisade as Outcome;
    const p = deps.policy();
    o.policy = p;
    if (!p) return void sendProblem(reply, o, 'POLICY_UNAVAILABLE', 'sidecar', null);
    const raw = request.raw;
    const np = normalizePath(raw.url ?? '', { allowMatrixParams: p.allowMatrixParams });
    if (!np.ok) return void sendProblem(reply, o, 'PATH_INVALID', 'request', null, np.reason);
    o.path = np.path;
    // One reading of the request: no duplicate singletons, no method or path override left for the service to honour.
    const hv = p.checkHeaders(raw.method ?? 'GET', raw.rawHeaders, raw.headers);
    if (!hv.ok) return void sendProblem(reply, o, hv.code, 'request', null, hv.detail, undefined, undefined, hv.reason);
    const method = hv.method ?? raw.method ?? 'GET';
    const socket = raw.socket as Socket;
    const ctx: RequestContext = {
      id: request.id,
      traceId: o.trace.traceId,
      start: o.start,
      receivedAt: o.receivedAt,
      method,
      path: np.path,
      query: np.query,
      host: raw.headers.host ?? '',
      headers: raw.headers,
      clientIp: clientIpOf(socket.remoteAddress ?? '', raw.headers['x-forwarded-for']),
      clientPort: socket.remotePort ?? 0,
      serverIp: socket.localAddress ?? '',
      serverPort: socket.localPort ?? 0,
      tls: kind === 'tls' ? tlsFactsOf(socket as TLSSocket) : null,
      policy: p,
      identity: null,
      route: p.routeOf(method, np.path),
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
    const run = runPipeline(p.stages, ctx);
    if (run instanceof Promise) {
      // One promise, not two (then + catch): a throw in proceed is caught here as a stage failure is.
      run.then(
        (result) => {
          try {
            proceed(request, reply, o, ctx, result, np.forward, np.query, hv.method);
          } catch (err) {
            stageFailed(reply, err);
          }
        },
        (err: unknown) => stageFailed(reply, err),
      );
      return;
    }
    proceed(request, reply, o, ctx, run, np.forward, np.query, hv.method);
  };
}
