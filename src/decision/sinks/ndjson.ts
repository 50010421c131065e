/**
 * NDJSON sink: one encoded decision per line, to stdout or a file. The default
 * sink when no Kafka is configured, and the recording `policy diff` replays.
 * Each record is encoded when it is written (after its response is sent: one
 * event's worth of work, never a whole batch holding the event loop) into a
 * buffer; buffers are written whole, at least every `lingerMs`. If the stream
 * cannot keep up, the lines held in memory are bounded and overflow is counted
 * as dropped (a metric that must stay zero), as is a record the encoder refuses.
 */
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { decisionEncoder, type EventDetail } from '../encode.ts';
import type { DecisionRecord } from '../record.ts';
import type { DecisionSink, SinkStats } from '../sink.ts';

export interface NdjsonSinkOptions {
  /** "-" or "stdout" for standard output, else a file path (appended). Default stdout. */
  readonly target?: string;
  /** Writes here instead of `target` (the decision thread's relay to the process's stdout); ended on close. */
  readonly stream?: Writable;
  /** Records held in memory while the stream is busy; beyond this they are dropped. Default 100000. */
  readonly maxBuffered?: number;
  /** Longest a record waits before being written, milliseconds. Default 50. */
  readonly lingerMs?: number;
  readonly encode?: (r: DecisionRecord) => unknown;
  /** Detail level of the events (PALISADE_EVENT_DETAIL); default "standard". Ignored with `encode`. */
  readonly detail?: EventDetail;
}

/** Size of the buffers lines are written into, bytes: one write call per buffer (or per linger). */
const CHUNK_BYTES = 256 * 1024;
/** Chunk buffers kept for reuse once written. */
const SPARE_CHUNKS = 2;

interface Chunk {
  readonly buf: Buffer;
  used: number;
  lines: number;
}

export function createNdjsonSink(options: NdjsonSinkOptions = {}): DecisionSink {
  const target = options.target ?? 'stdout';
  const toStdout = options.stream === undefined && (target === '-' || target === 'stdout');
  const out: Writable = options.stream ?? (toStdout ? process.stdout : createWriteStream(target, { flags: 'a' }));
  const maxBuffered = options.maxBuffered ?? 100_000;
  const lingerMs = options.lingerMs ?? 50;
  const custom = options.encode;
  const serialize = custom ? (r: DecisionRecord) => JSON.stringify(custom(r)) : decisionEncoder(options.detail ?? 'standard');
  // Lines go straight into reusable buffers: joining a batch of ~4 KB lines
  // into one string and converting that to bytes cost more per event (two
  // copies and a large allocation each time) than writing each line into a
  // buffer once.
  let current: Chunk | null = null;
  const spare: Buffer[] = [];
  /** Lines accepted and not yet written (the memory bound counts these). */
  let pending = 0;
  let accepted = 0;
  let delivered = 0;
  let dropped = 0;
  let timer: NodeJS.Timeout | null = null;
  let writing: Promise<void> = Promise.resolve();
  let closed = false;

  /** Hands the current chunk to the stream, after the chunks before it. */
  function seal(): Promise<void> {
    const c = current;
    if (c === null || c.lines === 0) return writing;
    current = null;
    writing = writing.then(
      () =>
        new Promise<void>((resolve) => {
          out.write(c.buf.subarray(0, c.used), (err) => {
            pending -= c.lines;
            if (err) dropped += c.lines;
            else delivered += c.lines;
            // The stream is done with the bytes: the buffer can take new lines.
            if (c.buf.length === CHUNK_BYTES && spare.length < SPARE_CHUNKS) spare.push(c.buf);
            resolve();
          });
        }),
    );
    return writing;
  }

  function drain(): Promise<void> {
    timer = null;
    return seal();
  }

  function append(line: string): void {
    // Worst case three bytes per UTF-16 unit, plus the newline.
    const room = line.length * 3 + 1;
    if (current !== null && current.buf.length - current.used < room) void seal();
    if (current === null) {
      const size = Math.max(CHUNK_BYTES, room);
      current = { buf: (size === CHUNK_BYTES ? spare.pop() : undefined) ?? Buffer.allocUnsafeSlow(size), used: 0, lines: 0 };
    }
    current.used += current.buf.write(line, current.used, 'utf8');
    current.buf[current.used++] = 0x0a;
    current.lines++;
  }

  return {
    write(record) {
      accepted++;
      if (closed || pending >= maxBuffered) {
        dropped++;
        return;
      }
      let line: string;
      try {
        line = serialize(record);
      } catch {
        dropped++;
        return;
      }
      append(line);
      pending++;
      timer ??= setTimeout(drain, lingerMs);
    },
    async flush() {
      if (timer) clearTimeout(timer);
      await drain();
    },
    async close() {
      if (timer) clearTimeout(timer);
      await drain();
      closed = true;
      if (!toStdout) await new Promise<void>((resolve) => out.end(resolve));
    },
    stats(): SinkStats {
      return { accepted, delivered, dropped, buffered: pending };
    },
  };
}

/** Keeps records in memory; for the in-process pipeline (embedded detector) and tests. */
export function createMemorySink(onRecord?: (r: DecisionRecord) => void): DecisionSink & { readonly records: DecisionRecord[] } {
  const records: DecisionRecord[] = [];
  return {
    records,
    write(r) {
      records.push(r);
      onRecord?.(r);
    },
    async flush() {},
    async close() {},
    stats() {
      return { accepted: records.length, delivered: records.length, dropped: 0, buffered: 0 };
    },
  };
}
