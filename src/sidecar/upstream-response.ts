/**
 * Sends the upstream's answer to the client. A small body of known length is
 * read whole and sent as one buffer; anything else streams through.
 *
 * Why: streaming a 100-byte JSON answer through reply-from costs a pipe, an
 * end-of-stream watcher and half a dozen listeners on two streams, a visible
 * share of a proxied request; undici's body reader collects the chunks
 * without any of that. A bonus: if the upstream fails halfway through such a
 * body, the client gets a clean 502 problem instead of a cut connection,
 * since nothing has been sent yet.
 */
import type { Readable } from 'node:stream';

/**
 * Largest body read whole, bytes: 16 KiB, a stream's own high-water mark, so
 * a slow client costs no more memory per response than a piped body would
 * hold in its buffers (most API answers are smaller).
 */
export const WHOLE_RESPONSE_MAX_BYTES = 16 * 1024;

interface Reply {
  send(payload: unknown): unknown;
}

/** undici's response body stream: a Readable with fetch-style readers. */
type BodyStream = Readable & { bytes?: () => Promise<Uint8Array> };

const DIGITS = /^\d{1,9}$/;

/** True when the response carries a body of known length small enough to read whole. */
export function readsWhole(method: string, status: number, headers: Readonly<Record<string, string | string[] | undefined>>): boolean {
  // HEAD, 1xx, 204 and 304 have no body; sending a buffer would rewrite their Content-Length.
  if (method === 'HEAD' || status < 200 || status === 204 || status === 304) return false;
  // fastify labels a buffer without a Content-Type application/octet-stream: the client must get what the upstream sent.
  if (headers['content-type'] === undefined) return false;
  const cl = headers['content-length'];
  return typeof cl === 'string' && DIGITS.test(cl) && Number(cl) <= WHOLE_RESPONSE_MAX_BYTES;
}

/**
 * Sends `stream` (the upstream body) on `reply`, whole when readsWhole() says
 * so (on the next tick: see sendWhole). `onBodyError` gets a failure while reading a whole body (the upstream
 * reset or timed out mid-body): nothing was sent yet, so it can answer. It is given the reply
 * and the headers back, so that one function serves every request (no closure per request).
 */
export function sendUpstreamBody<R extends Reply, H extends Readonly<Record<string, string | string[] | undefined>>>(reply: R, method: string, status: number, headers: H, stream: BodyStream, onBodyError: (err: Error, reply: R, headers: H) => void): void {
  if (typeof stream.bytes !== 'function' || !readsWhole(method, status, headers)) {
    reply.send(stream);
    return;
  }
  // The answer's head reaches us inside undici's parser callback; a small body that came in the
  // same chunk of input is pushed right after it returns: on the next tick it is usually all
  // buffered. From a TLS upstream the body may be a record of its own, handed over once the
  // ticks ran: it is there after that round of I/O (setImmediate), as for a request (limits/body.ts).
  process.nextTick(sendWhole, reply, headers, stream, onBodyError, true);
}

function sendWhole<R extends Reply, H extends Readonly<Record<string, string | string[] | undefined>>>(reply: R, headers: H, stream: BodyStream, onBodyError: (err: Error, reply: R, headers: H) => void, again: boolean): void {
  const length = Number(headers['content-length']);
  if (again && length > 0 && stream.readableLength < length && !stream.destroyed) return void setImmediate(sendWhole, reply, headers, stream, onBodyError, false);
  // All of it buffered (Content-Length bytes) and nobody reading: taken with one read, without
  // the whole-body reader's consumer, listeners and promise.
  if (length > 0 && stream.readableLength === length && !stream.destroyed && stream.readableFlowing !== true) {
    const body = stream.read() as Buffer | null;
    if (body !== null && body.length === length) {
      reply.send(body);
      return;
    }
    // Not expected (read() gives everything buffered): the bytes are gone, so the answer cannot be sent.
    onBodyError(new Error('the upstream body could not be read whole'), reply, headers);
    return;
  }
  (stream.bytes as NonNullable<BodyStream['bytes']>)().then(
    (body) => void reply.send(Buffer.from(body.buffer, body.byteOffset, body.byteLength)),
    (err: unknown) => onBodyError(err instanceof Error ? err : new Error(String(err)), reply, headers),
  );
}
