/**
 * NDJSON sink: one encoded decision per line, to stdout or a file. The default
 * sink when no Kafka is configured, and the recording `policy diff` replays.
 * Each record is encoded when it is written (after its response is sent: one
 * event's worth of work, never a whole batch holding the event loop); lines
 * are joined and written in batches. If the stream cannot keep up, the
 * in-memory buffer is bounded and overflow is counted as dropped (a metric
 * that must stay zero), as is a record the encoder refuses.
 */
import { createWriteStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { encodeDecisionJson } from '../encode.ts';
import type { DecisionRecord } from '../record.ts';
import type { DecisionSink, SinkStats } from '../sink.ts';

export interface NdjsonSinkOptions {
  /** "-" or "stdout" for standard output, else a file path (appended). Default stdout. */
  readonly target?: string;
  /** Records held in memory while the stream is busy; beyond this they are dropped. Default 100000. */
  readonly maxBuffered?: number;
  /** Longest a record waits before being written, milliseconds. Default 50. */
  readonly lingerMs?: number;
  readonly encode?: (r: DecisionRecord) => unknown;
}

export function createNdjsonSink(options: NdjsonSinkOptions = {}): DecisionSink {
  const target = options.target ?? 'stdout';
  const toStdout = target === '-' || target === 'stdout';
  const out: Writable = toStdout ? process.stdout : createWriteStream(target, { flags: 'a' });
  const maxBuffered = options.maxBuffered ?? 100_000;
  const lingerMs = options.lingerMs ?? 50;
  const custom = options.encode;
  const serialize = custom ? (r: DecisionRecord) => JSON.stringify(custom(r)) : encodeDecisionJson;
  let queue: string[] = [];
  let accepted = 0;
  let delivered = 0;
  let dropped = 0;
  let timer: NodeJS.Timeout | null = null;
  let writing: Promise<void> = Promise.resolve();
  let closed = false;

  function drain(): Promise<void> {
    timer = null;
    if (queue.length === 0) return writing;
    const batch = queue;
    queue = [];
    const text = batch.join('\n') + '\n';
    writing = writing.then(
      () =>
        new Promise<void>((resolve) => {
          out.write(text, (err) => {
            if (err) dropped += batch.length;
            else delivered += batch.length;
            resolve();
          });
        }),
    );
    return writing;
  }

  return {
    write(record) {
      accepted++;
      if (closed || queue.length >= maxBuffered) {
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
      queue.push(line);
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
      return { accepted, delivered, dropped, buffered: queue.length };
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
