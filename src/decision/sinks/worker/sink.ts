/**
 * A decision sink that runs in a worker thread (PALISADE_DECISIONS_THREAD=worker).
 *
 * On the request thread `write` only appends the record to a batch; a batch
 * is handed to the thread when it is full or `lingerMs` after its first
 * record, as one string of JSON lines (an array of fields each), with the
 * shared identity, TLS and policy objects sent once (protocol.ts). The thread maps each record to its OCSF event,
 * serializes it and writes it with the NDJSON or Kafka sink (thread.ts): ~20
 * µs per request with NDJSON, and kafkajs's ~80 µs with Kafka, that the
 * request thread no longer spends. The work moves to another core rather
 * than disappearing: a pod limited to one CPU gains little, one with two or
 * more gains throughput (docs/benchmark.md).
 *
 * Nothing is lost silently: records on their way to the thread, or waiting
 * for one to start, are bounded (`maxQueued`, overflow counted as dropped: a
 * thread that falls behind cannot grow this thread's memory), and if it dies the
 * records it had not yet delivered are counted as dropped and a new thread is
 * started. Totals (accepted, delivered, dropped, buffered, spool) are the
 * thread's, reported every 100 ms and on every flush, plus what is still on
 * this side.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { DecisionRecord } from '../../record.ts';
import type { DecisionSink, SinkStats } from '../../sink.ts';
import { wireLine, type FromThread, type InnerSinkSpec, type ThreadData, type ToThread } from './protocol.ts';

export interface WorkerSinkOptions {
  readonly spec: InnerSinkSpec;
  readonly logger: Logger;
  /** Records per message to the thread. Default 512 with the Kafka sink, 128 with NDJSON (HANDOVER below). */
  readonly batchRecords?: number;
  /** Longest a record waits on the request thread before its batch is sent, milliseconds. Default 50 with the Kafka sink, 10 with NDJSON. */
  readonly lingerMs?: number;
  /**
   * Records sent to the thread and not yet taken by its sink (as of its last report, at most
   * 100 ms old), or held while no thread runs (start, restart); beyond this they are dropped
   * (counted). Default 100000.
   */
  readonly maxQueued?: number;
  /** Wait before a dead thread is replaced, milliseconds. Default 1000. */
  readonly restartDelayMs?: number;
  /** Called with each thread started (the first and any replacement): tests stop one to check the loss accounting. */
  readonly onThread?: (worker: Worker) => void;
}

export interface WorkerSink extends DecisionSink {
  stats(): SinkStats;
}

const ZERO: SinkStats = { accepted: 0, delivered: 0, dropped: 0, buffered: 0 };

/** One running thread and what it has reported. */
interface Thread {
  readonly worker: Worker;
  /** Resolves when the inner sink is open; rejects with its error. */
  readonly ready: Promise<void>;
  isReady: boolean;
  /** Records posted to it. */
  sent: number;
  stats: SinkStats;
  readonly waiting: Map<number, () => void>;
  /** Set once close() has asked it to stop: its exit is expected. */
  closing: boolean;
  exited: boolean;
}

const THREAD_URL = new URL('./thread.ts', import.meta.url);

/**
 * How records are handed over by default, per sink. Every message wakes the thread, and a
 * wake-up costs both threads far more than the records it carries: with the Kafka sink at
 * 3,500 records/s, 10 ms batches (~35 records) cost 44.3 µs per record over all threads,
 * 50 ms batches 35.7 (bench/kafka-thread.ts, CPU per thread from /proc); 100 ms saved
 * nothing more. The Kafka sink holds events for its own linger (250 ms by default)
 * before it publishes, so 50 ms more on this side changes little for a consumer, and what an
 * abrupt end (SIGKILL, OOM kill) loses grows by at most those 50 ms of records (docs/kafka.md).
 * An NDJSON file is read as it is written (tail -f, a log shipper): its records go every 10 ms.
 */
const HANDOVER = {
  kafka: { batchRecords: 512, lingerMs: 50 },
  ndjson: { batchRecords: 128, lingerMs: 10 },
} as const;

export async function createWorkerSink(o: WorkerSinkOptions): Promise<WorkerSink> {
  const log = o.logger.child({ thread: 'decisions' });
  const batchRecords = o.batchRecords ?? HANDOVER[o.spec.kind].batchRecords;
  const lingerMs = o.lingerMs ?? HANDOVER[o.spec.kind].lingerMs;
  const maxQueued = o.maxQueued ?? 100_000;
  const restartDelayMs = o.restartDelayMs ?? 1000;
  let accepted = 0;
  /** Dropped on this side: over maxQueued, records that would not serialize, records a dead thread held. */
  let dropped = 0;
  /** Totals of threads that died (a new thread counts from zero). */
  let pastDelivered = 0;
  let pastDropped = 0;
  let batch: DecisionRecord[] = [];
  /** Batches waiting for a thread (while one starts). */
  const queued: DecisionRecord[][] = [];
  let queuedRecords = 0;
  let timer: NodeJS.Timeout | null = null;
  let nextId = 1;
  let closed = false;
  /** The first thread opened its sink: from then on a dead thread is replaced. */
  let opened = false;
  let thread: Thread;

  function relayLog(line: string): void {
    try {
      const { level, msg, time: _t, pid: _p, hostname: _h, name: _n, ...fields } = JSON.parse(line) as { level: number; msg?: string; [k: string]: unknown };
      const label = o.logger.levels.labels[level] ?? 'info';
      (log[label as 'info'] as (obj: object, msg?: string) => void).call(log, fields, msg);
    } catch {
      log.warn('unreadable log line from the decision thread');
    }
  }

  function start(): Thread {
    refs = new WeakMap(); // the new thread knows no shared object yet
    // No resourceLimits: a fixed young generation would raise V8's own size in a small container
    // (16 MiB of new space against 4.75 in a 256 MiB one), and where V8 would make it large the
    // process's --max-semi-space-size caps this thread's too (src/cli/node-flags.ts).
    const worker = new Worker(THREAD_URL, { workerData: { spec: o.spec, logLevel: o.logger.level } satisfies ThreadData });
    // The sidecar's close() stops the thread; it never keeps the process alive by itself.
    worker.unref();
    o.onThread?.(worker);
    let settle!: (error?: string) => void;
    const ready = new Promise<void>((resolve, reject) => {
      settle = (error) => (error === undefined ? resolve() : reject(new Error(error)));
    });
    const t: Thread = { worker, ready, isReady: false, sent: 0, stats: ZERO, waiting: new Map(), closing: false, exited: false };
    worker.on('message', (m: FromThread) => {
      switch (m.t) {
        case 'ready':
          t.isReady = m.error === undefined;
          settle(m.error);
          if (t.isReady) sendQueued(t);
          return;
        case 'stats':
          t.stats = m.stats;
          return;
        case 'done':
          t.stats = m.stats;
          if (m.error !== undefined) log.error({ error: m.error }, 'decision sink flush/close failed in its thread');
          t.waiting.get(m.id)?.();
          t.waiting.delete(m.id);
          return;
        case 'log':
          relayLog(m.line);
          return;
        case 'stdout':
          process.stdout.write(m.bytes, (err) => {
            if (!t.exited) t.worker.postMessage({ t: 'written', id: m.id, ...(err ? { error: err.message } : {}) } satisfies ToThread);
          });
          return;
      }
    });
    worker.on('error', (err) => {
      settle(err.message);
      // Before the first thread is open the error is createWorkerSink's to report (it rejects).
      if (opened) log.error({ err }, 'decision sink thread failed');
    });
    worker.on('exit', (code) => {
      settle(`decision sink thread exited (code ${code}) before it was ready`);
      t.exited = true;
      t.isReady = false; // batches wait in `queued` for the next thread
      for (const done of t.waiting.values()) done();
      t.waiting.clear();
      // Everything it had not delivered or dropped is gone with it (none after a clean close).
      const lost = Math.max(0, t.sent - t.stats.delivered - t.stats.dropped);
      pastDelivered += t.stats.delivered;
      pastDropped += t.stats.dropped;
      dropped += lost;
      t.stats = ZERO;
      t.sent = 0;
      if (t.closing || closed || !opened) return;
      log.error({ code, lost }, 'decision sink thread exited; starting a new one');
      const next = setTimeout(() => {
        if (closed) return;
        thread = start();
        thread.ready.catch((err: Error) => log.error({ err }, 'decision sink thread could not open its sink'));
      }, restartDelayMs);
      next.unref();
    });
    return t;
  }

  // Shared objects already sent to the current thread, by reference (protocol.ts, wireLine).
  // A new thread starts with none; references are never reused, so a late `forget` of an
  // earlier thread's reference is harmless.
  let refs = new WeakMap<object, number>();
  let nextRef = 1;
  let forget: number[] = [];
  const collected = new FinalizationRegistry<number>((ref) => forget.push(ref));

  function refOf(o: object | null, defs: [number, object][]): number | null {
    if (o === null) return null;
    let ref = refs.get(o);
    if (ref === undefined) {
      ref = nextRef++;
      refs.set(o, ref);
      collected.register(o, ref);
      defs.push([ref, o]);
    }
    return ref;
  }

  function wire(r: DecisionRecord, defs: [number, object][]): string {
    return wireLine(r, refOf(r.identity, defs), refOf(r.tls, defs), refOf(r.policy, defs));
  }

  function send(t: Thread, defs: [number, object][], lines: string[], gone: number[]): void {
    t.worker.postMessage({ t: 'batch', defs, records: lines.join('\n'), count: lines.length, forget: gone } satisfies ToThread);
    t.sent += lines.length;
  }

  function post(t: Thread, records: DecisionRecord[]): void {
    const defs: [number, object][] = [];
    const gone = forget;
    forget = [];
    try {
      send(t, defs, records.map((r) => wire(r, defs)), gone);
    } catch {
      // A record that does not serialize (it never should: records are plain data) costs only
      // itself: the batch is sent again one record at a time, each with its own definitions.
      refs = new WeakMap();
      send(t, [], [], gone);
      for (const r of records) {
        const one: [number, object][] = [];
        try {
          send(t, one, [wire(r, one)], []);
        } catch {
          for (const [, o] of one) refs.delete(o);
          dropped++;
        }
      }
    }
  }

  function sendQueued(t: Thread): void {
    for (const b of queued.splice(0)) post(t, b);
    queuedRecords = 0;
  }

  function sendBatch(): void {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    if (batch.length === 0) return;
    const b = batch;
    batch = [];
    if (thread.isReady) {
      if (thread.sent - thread.stats.accepted + b.length > maxQueued) {
        dropped += b.length;
        return;
      }
      return post(thread, b);
    }
    if (queuedRecords + b.length > maxQueued) {
      dropped += b.length;
      return;
    }
    queued.push(b);
    queuedRecords += b.length;
  }

  /** Sends what is waiting, then asks the thread to flush or close and waits for its answer. */
  async function ask(kind: 'flush' | 'close'): Promise<void> {
    sendBatch();
    const t = thread;
    try {
      await t.ready;
    } catch {
      return; // no sink to flush: what waits for it is counted as buffered (or dropped on close)
    }
    if (t.exited) return; // between a thread's death and its replacement: nothing to ask
    const id = nextId++;
    if (kind === 'close') t.closing = true;
    await new Promise<void>((resolve) => {
      t.waiting.set(id, resolve);
      t.worker.postMessage({ t: kind, id } satisfies ToThread);
    });
  }

  thread = start();
  try {
    await thread.ready;
  } catch (err) {
    // The sidecar does not start (the caller reports the error): no thread is to replace this one.
    closed = true;
    await thread.worker.terminate();
    throw err;
  }
  opened = true;

  return {
    write(record) {
      accepted++;
      if (closed) {
        dropped++;
        return;
      }
      batch.push(record);
      if (batch.length >= batchRecords) sendBatch();
      else if (timer === null) {
        timer = setTimeout(sendBatch, lingerMs);
        timer.unref();
      }
    },
    flush: () => ask('flush'),
    async close() {
      if (closed) return;
      await ask('close');
      closed = true;
      // What never reached a sink (no thread could start) is lost now.
      dropped += queuedRecords + batch.length;
      queued.length = 0;
      queuedRecords = 0;
      batch = [];
      await thread.worker.terminate();
    },
    stats(): SinkStats {
      const w = thread.stats;
      const inFlight = Math.max(0, thread.sent - w.accepted);
      return {
        ...w,
        accepted,
        delivered: pastDelivered + w.delivered,
        dropped: dropped + pastDropped + w.dropped,
        buffered: batch.length + queuedRecords + inFlight + w.buffered,
      };
    },
  };
}
