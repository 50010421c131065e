/**
 * RFC 9457 problem details for every response the sidecar itself makes.
 * The body names a stable code and the request id, never internals.
 */
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
