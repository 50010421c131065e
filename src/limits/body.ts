/**
 * Request bodies under limits, without buffering more than the limit:
 *  - readBody: reads a body into memory (when a schema needs it), stopping
 *    at maxBytes and at the first JSON structure violation;
 *  - BodyGuard: a pass-through for bodies streamed to the service that
 *    counts bytes and scans JSON as they flow, and fails the stream (which
 *    aborts the upstream request) the moment a limit is broken.
 */
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import type { JsonScanner, JsonViolation } from './json-scan.ts';

export type BodyViolation = { readonly kind: 'size'; readonly limit: number } | JsonViolation;

export type ReadResult =
  | { readonly kind: 'ok'; readonly body: Buffer }
  /** Reading stopped at a violation; the stream is paused with the rest unread. */
  | { readonly kind: 'violation'; readonly violation: BodyViolation; readonly chunks: readonly Buffer[] }
  /** The client went away (or timed out) before the end. */
  | { readonly kind: 'aborted' };

const EMPTY = Buffer.alloc(0);

/**
 * The whole body, when the HTTP parser has already buffered all of it (the request is
 * complete) and nothing has read from it: taken in one synchronous read, with no listener
 * and no flowing mode (a `data` listener's resume, the flow and the `end` event cost more
 * than the check of a 1 KB body). Null otherwise: still arriving, or not a parsed request.
 */
export function takeComplete(stream: Readable): Buffer | null {
  if ((stream as IncomingMessage).complete !== true || stream.destroyed || stream.readableFlowing === true || stream.readableEnded) return null;
  const body = (stream.read() as Buffer | null) ?? EMPTY;
  // Node's server "dumps" a request nobody consumed when its response ends (a resume, a tick
  // and a flow over an empty buffer), and counts as consumed only a read that reached the
  // socket, which a read of a body already buffered whole never does. This one was read: say so.
  (stream as { _consuming?: boolean })._consuming = true;
  return body;
}

/** The checks of readBody on a body read whole (takeComplete). */
export function checkWhole(body: Buffer, maxBytes: number, scanner: JsonScanner | null): ReadResult {
  if (body.length > maxBytes) return { kind: 'violation', violation: { kind: 'size', limit: maxBytes }, chunks: [body] };
  const v = scanner?.push(body) ?? null;
  return v ? { kind: 'violation', violation: v, chunks: [body] } : { kind: 'ok', body };
}

/**
 * Reads a body into memory, up to maxBytes and the first JSON violation.
 *
 * A request's handler runs inside the HTTP parser's callback for its headers; the body bytes
 * that came in the same read from the socket (all of a small body, usually) are handed to the
 * parser right after. Over TLS the head and the body are often two records, each handed over
 * in a callback of its own with the ticks run in between: on the next tick the body measured
 * complete for none of 800 requests from undici over mTLS, once the round of I/O was done
 * (setImmediate) for all of them. So the body is looked at then, taken whole if it is
 * complete, and otherwise read as it arrives.
 */
export function readBody(stream: Readable, maxBytes: number, scanner: JsonScanner | null): Promise<ReadResult> {
  return new Promise((resolve) => setImmediate(readOrListen, stream, maxBytes, scanner, resolve));
}

function readOrListen(stream: Readable, maxBytes: number, scanner: JsonScanner | null, resolve: (r: ReadResult) => void): void {
  const whole = takeComplete(stream);
  if (whole !== null) return resolve(checkWhole(whole, maxBytes, scanner));
  // Gone before its body was complete: nothing will come.
  if (stream.destroyed) return resolve({ kind: 'aborted' });
  listen(stream, maxBytes, scanner, resolve);
}

function listen(stream: Readable, maxBytes: number, scanner: JsonScanner | null, resolve: (r: ReadResult) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let settled = false;
  const finish = (r: ReadResult) => {
    if (settled) return;
    settled = true;
    stream.off('data', onData);
    stream.off('end', onEnd);
    stream.off('error', onAbort);
    stream.off('close', onClose);
    resolve(r);
  };
  const onData = (chunk: Buffer) => {
    size += chunk.length;
    if (size > maxBytes) {
      stream.pause();
      return finish({ kind: 'violation', violation: { kind: 'size', limit: maxBytes }, chunks: [...chunks, chunk] });
    }
    chunks.push(chunk);
    const v = scanner?.push(chunk) ?? null;
    if (v) {
      stream.pause();
      finish({ kind: 'violation', violation: v, chunks });
    }
  };
  const onEnd = () => finish({ kind: 'ok', body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size) });
  const onAbort = () => finish({ kind: 'aborted' });
  const onClose = () => {
    if (!(stream as IncomingMessage).complete) finish({ kind: 'aborted' });
  };
  stream.on('data', onData);
  stream.once('end', onEnd);
  stream.once('error', onAbort);
  stream.once('close', onClose);
}

/**
 * Counts and scans a streamed body. `onViolation` decides: return an Error to
 * fail the stream (enforced), or null to note it and pass the bytes on
 * (dry-run). It is called once.
 *
 * Pull-based: it reads from the request only when the upstream client reads
 * from it, so a violation always fails a stream that has a consumer (which
 * then aborts the upstream request), never one nobody listens to yet.
 */
export class BodyGuard extends Readable {
  #bytes = 0;
  #reported = false;
  #ended = false;
  readonly #source: Readable;
  readonly #maxBytes: number;
  readonly #scanner: JsonScanner | null;
  readonly #onViolation: (v: BodyViolation) => Error | null;

  constructor(source: Readable, maxBytes: number, scanner: JsonScanner | null, onViolation: (v: BodyViolation) => Error | null) {
    super();
    this.#source = source;
    this.#maxBytes = maxBytes;
    this.#scanner = scanner;
    this.#onViolation = onViolation;
    // A failure with no consumer yet must not crash the process; the consumer sees it when it reads.
    this.on('error', () => undefined);
    source.on('readable', () => this.#pump());
    source.once('end', () => {
      this.#ended = true;
      this.#pump();
    });
    source.once('error', (err) => this.destroy(err));
    source.once('close', () => {
      if (!(source as IncomingMessage).complete && !this.#ended) this.destroy(new Error('client aborted the request body'));
    });
  }

  get bytes(): number {
    return this.#bytes;
  }

  override _read(): void {
    this.#pump();
  }

  #pump(): void {
    if (this.destroyed) return;
    for (let chunk = this.#source.read() as Buffer | null; chunk !== null; chunk = this.#source.read() as Buffer | null) {
      this.#bytes += chunk.length;
      if (!this.#reported) {
        let v: BodyViolation | null = this.#bytes > this.#maxBytes ? { kind: 'size', limit: this.#maxBytes } : null;
        if (v === null && this.#scanner) v = this.#scanner.push(chunk);
        if (v !== null) {
          this.#reported = true;
          const err = this.#onViolation(v);
          if (err) {
            this.destroy(err);
            return;
          }
        }
      }
      if (!this.push(chunk)) return;
    }
    if (this.#ended) this.push(null);
  }
}

/** The bytes already read, then the rest of `source`: forwards a body whose reading stopped early. */
export function prefixed(chunks: readonly Buffer[], source: Readable): Readable {
  async function* all() {
    for (const c of chunks) yield c;
    source.resume();
    for await (const c of source) yield c as Buffer;
  }
  return Readable.from(all(), { objectMode: false });
}
