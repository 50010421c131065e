/**
 * What the client did wrong or gave up on: bytes that never made a request (bad framing,
 * oversized headers, too slow), errors raised by the HTTP layer for a request, and the
 * client leaving before its answer. Each is one decision record; none is a server fault.
 *
 * A client leaving is the common case under load (a load test's end, a mobile client, a
 * caller's timeout), and it surfaces in three places: fastify's onRequestAbort hook, the
 * stream of a forwarded answer that fastify destroys when the response closes (an
 * UND_ERR_ABORTED that reaches the error handler), and the upload the upstream call was
 * reading (a reply-from error). All three become the same 499 record and at most a debug
 * line: an error log with a stack per abort buried real faults under noise.
 */
import type { Socket } from 'node:net';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { CODES, PalisadeError, type Code } from '../errors/codes.ts';
import type { Decider } from '../pipeline/types.ts';
import type { CompiledPolicy } from '../policy/compiled.ts';
import { CLIENT_CLOSED_STATUS, clientLeft, decide, openOutcome, socketOutcome, type Outcome, type Recorder } from './outcome.ts';
import { rawProblemResponse, replyProblem } from './problem.ts';
import { NO_REQUEST_TRACE } from '../telemetry/tracing.ts';

/**
 * Sets the outcome's decision and sends it as problem+json. `detail` is the client's (a fixed
 * sentence, see Deny.detail); `reason` is the operators' and goes to the decision record only.
 */
export function sendProblem(reply: FastifyReply, o: Outcome, code: Code, decidedBy: Decider, rule: string | null, detail?: string, extensions?: Readonly<Record<string, unknown>>, headers?: Readonly<Record<string, string>>, reason?: string): FastifyReply {
  decide(o, code, decidedBy, rule, reason ?? detail ?? null);
  return replyProblem(reply, code, o.requestId, detail, extensions, headers);
}

/** True when the client's connection is gone: nothing can be answered any more. */
export function clientGone(request: FastifyRequest): boolean {
  return request.raw.socket?.destroyed === true || request.raw.destroyed && !request.raw.complete;
}

/** Records the client's leaving (499) once; a debug line says where it was noticed. */
export function recordAbort(o: Outcome, record: Recorder, logger: Logger, where: string): void {
  if (o.emitted) return;
  clientLeft(o);
  logger.debug({ requestId: o.requestId, traceId: o.trace.traceId, where }, 'client closed the connection');
  record(o, CLIENT_CLOSED_STATUS);
}

export interface ClientErrorDeps {
  readonly logger: Logger;
  readonly record: Recorder;
  readonly policy: () => CompiledPolicy | null;
}

/**
 * Node's clientError handler: an HTTP-level failure on a socket. A request already in a
 * handler on that socket owns the failure (its one decision); otherwise the bytes get a
 * decision of their own. Later errors on the same socket add nothing.
 */
export function createClientErrorHandler(deps: ClientErrorDeps, inflight: WeakMap<Socket, FastifyRequest>): (err: NodeJS.ErrnoException, socket: Socket) => void {
  const clientErrored = new WeakSet<Socket>();
  return (err, socket) => {
    // Only an HTTP-level failure is a request; a reset or TLS failure is not (TLS
    // handshake failures are counted by the tlsClientError handler instead).
    const isHttp = (err.code ?? '').startsWith('HPE_') || err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    if (!isHttp || clientErrored.has(socket)) {
      socket.destroy();
      return;
    }
    clientErrored.add(socket);
    const pending = inflight.get(socket)?.palisade;
    // The connection ended in the middle of a request already being handled (an upload cut
    // short): the client left, it did not send garbage.
    if (pending && !pending.emitted && err.code === 'HPE_INVALID_EOF_STATE') {
      recordAbort(pending, deps.record, deps.logger, 'request body');
      socket.destroy();
      return;
    }
    const code: Code = err.code === 'HPE_HEADER_OVERFLOW' ? 'HEADERS_TOO_LARGE' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'REQUEST_TIMEOUT' : 'REQUEST_MALFORMED';
    let id: string;
    if (pending && !pending.emitted) {
      decide(pending, code, 'request', null, err.code ?? null);
      deps.record(pending, CODES[code].status);
      id = pending.requestId;
    } else {
      // A request too broken to parse still yields its one decision record.
      const o = socketOutcome(socket, deps.policy(), code, err.code ?? 'client error');
      deps.record(o, CODES[code].status);
      id = o.requestId;
    }
    if (socket.writable) {
      socket.end(rawProblemResponse(code, id, err.code === 'HPE_HEADER_OVERFLOW' ? 'request headers too large' : code === 'REQUEST_TIMEOUT' ? 'request not received in time' : 'malformed HTTP request'));
    } else {
      socket.destroy();
    }
  };
}

/** fastify's error handler: errors the HTTP layer or a handler raised for a request. */
export function createErrorHandler(deps: ClientErrorDeps, scheme: 'https' | 'http'): (err: FastifyError | (Error & { code?: string; statusCode?: number }), request: FastifyRequest, reply: FastifyReply) => unknown {
  return (err, request, reply) => {
    // (undefined, not null, on the request object fastify builds for a framework error)
    let o = request.palisade ?? null;
    if (o === null) {
      // An error before the onRequest hook (the router refusing the URL, through frameworkErrors)
      // still owes its one decision; no onResponse hook will record it, so this path does.
      const opened = openOutcome(request.raw, request.id, deps.policy(), NO_REQUEST_TRACE, scheme, false);
      request.palisade = o = opened;
      reply.raw.once('finish', () => deps.record(opened, reply.raw.statusCode));
      reply.raw.once('close', () => recordAbort(opened, deps.record, deps.logger, 'framework error'));
    }
    if (clientGone(request)) return recordAbort(o, deps.record, deps.logger, `error handler: ${err.code ?? err.name}`);
    if (reply.sent) return;
    if (err instanceof PalisadeError && err.code in CODES) return sendProblem(reply, o, err.code, o.decidedBy, null, undefined, undefined, undefined, err.message);
    if (err.code === 'FST_ERR_BAD_URL') return sendProblem(reply, o, 'PATH_INVALID', 'request', null, 'invalid URL');
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendProblem(reply, o, 'BODY_TOO_LARGE', 'request', null);
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return sendProblem(reply, o, 'REQUEST_MALFORMED', 'request', null);
    deps.logger.error({ err, requestId: request.id, traceId: o.trace.traceId }, 'request failed');
    return sendProblem(reply, o, 'INTERNAL_ERROR', 'sidecar', null);
  };
}
