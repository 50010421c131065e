/**
 * RFC 9457 problem details for every response the sidecar itself makes.
 * The body names a stable code and the request id, never internals; the
 * response carries the request id in X-Request-Id as allowed answers do, so a
 * caller can quote it whatever the verdict.
 */
import type { FastifyReply } from 'fastify';
import { CODES, type Code } from '../errors/codes.ts';

export const PROBLEM_TYPE_BASE = 'urn:palisade:problem:';

export function problemBody(code: Code, requestId: string, detail?: string, extensions?: Readonly<Record<string, unknown>>): string {
  const spec = CODES[code];
  const body: Record<string, unknown> = {
    type: PROBLEM_TYPE_BASE + code,
    title: spec.title,
    status: spec.status,
    code,
    request_id: requestId,
  };
  if (detail) body['detail'] = detail;
  if (extensions) for (const [k, v] of Object.entries(extensions)) if (!(k in body)) body[k] = v;
  return JSON.stringify(body);
}

/** Sends a problem answer on a fastify reply (the caller has recorded the decision in the outcome). */
export function replyProblem(reply: FastifyReply, code: Code, requestId: string, detail?: string, extensions?: Readonly<Record<string, unknown>>, headers?: Readonly<Record<string, string>>): FastifyReply {
  if (headers) reply.headers(headers);
  return reply
    .code(CODES[code].status)
    .header('content-type', 'application/problem+json')
    .header('cache-control', 'no-store')
    .header('x-request-id', requestId)
    .send(problemBody(code, requestId, detail, extensions));
}

/** A whole HTTP/1.1 problem response, for a socket whose bytes never made a request fastify could answer. */
export function rawProblemResponse(code: Code, requestId: string, detail: string): string {
  const body = problemBody(code, requestId, detail);
  return `HTTP/1.1 ${CODES[code].status} ${CODES[code].title}\r\nContent-Type: application/problem+json\r\nCache-Control: no-store\r\nX-Request-Id: ${requestId}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}
