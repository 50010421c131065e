/**
 * Audit-mode response checks: the upstream response is streamed to the
 * client unchanged while a bounded copy is kept; at its end (before the
 * decision is recorded) status, content type and body are checked against
 * the operation's declared responses. A mismatch is recorded as would_deny
 * RESPONSE_SCHEMA_VIOLATION with the operation id, and logged with the JSON
 * pointers (never values). Nothing is ever blocked.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import type { Logger } from 'pino';
import { bestRange, mediaTypeOf } from '../limits/media-type.ts';
import type { RequestContext } from '../pipeline/types.ts';
import type { CompiledOperation } from './compile.ts';
import { fieldErrors, type FieldError } from './errors.ts';

class ResponseCopy extends Transform {
  readonly #chunks: Buffer[] = [];
  #size = 0;
  #overflow = false;
  readonly #max: number;
  readonly #done: (body: Buffer | null) => void;

  constructor(max: number, done: (body: Buffer | null) => void) {
    super();
    this.#max = max;
    this.#done = done;
  }

  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    if (!this.#overflow) {
      this.#size += chunk.length;
      if (this.#size > this.#max) {
        this.#overflow = true;
        this.#chunks.length = 0;
      } else this.#chunks.push(chunk);
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.#done(this.#overflow ? null : Buffer.concat(this.#chunks, this.#size));
    } finally {
      cb();
    }
  }
}

function statusKey(responses: ReadonlyMap<string, unknown>, status: number): string | null {
  const exact = String(status);
  if (responses.has(exact)) return exact;
  const range = `${Math.floor(status / 100)}XX`;
  if (responses.has(range)) return range;
  return responses.has('DEFAULT') ? 'DEFAULT' : null;
}

export function responseTap(op: CompiledOperation, ctx: RequestContext, maxBytes: number, logger: Logger): RequestContext['responseTap'] {
  const responses = op.responses;
  if (!responses || responses.size === 0) return null;
  const report = (why: string, errors: readonly FieldError[] = []) => {
    ctx.wouldDeny.push({ stage: 'validation', code: 'RESPONSE_SCHEMA_VIOLATION', rule: op.op.id });
    logger.warn({ requestId: ctx.id, operation: op.op.id, why, errors }, 'upstream response does not match the API schema (audit)');
  };
  return (status: number, headers: IncomingHttpHeaders, body: Readable): Readable => {
    const key = statusKey(responses, status);
    if (key === null) {
      report(`status ${status} is not declared`);
      return body;
    }
    const content = responses.get(key) as ReadonlyMap<string, unknown>;
    const hasBody = headers['content-length'] !== undefined ? headers['content-length'] !== '0' : headers['transfer-encoding'] !== undefined;
    if (content.size === 0) {
      if (hasBody) report(`response ${key} declares no content but has a body`);
      return body;
    }
    if (!hasBody) return body;
    const media = mediaTypeOf(typeof headers['content-type'] === 'string' ? headers['content-type'] : undefined);
    const range = media === null ? null : bestRange(media, [...content.keys()]);
    if (range === null) {
      report(`content type ${media ?? '(none)'} is not declared for ${key}`);
      return body;
    }
    const validate = op.responses?.get(key)?.get(range) ?? null;
    // Encoded bodies are not decoded here; they pass unchecked.
    const encoding = headers['content-encoding'];
    if (!validate || (encoding !== undefined && encoding !== 'identity')) return body;
    const copy = new ResponseCopy(maxBytes, (buf) => {
        if (buf === null) return;
        let data: unknown;
        try {
          data = JSON.parse(buf.toString('utf8').replace(/^\uFEFF/, ''));
        } catch {
          report('body is not valid JSON');
          return;
        }
        if (!validate(data)) report('body does not match the schema', fieldErrors('/body', validate.errors));
    });
    // pipeline, not pipe: an upstream error must reach the reply (which then closes), not leave it hanging.
    pipeline(body, copy, () => undefined);
    return copy;
  };
}
