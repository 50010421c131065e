/**
 * Where decision records go. `write` is called once per request, after its
 * response has been sent, and must never block on I/O or throw: a sink may
 * encode the one record there (bounded work, spread evenly over requests)
 * but buffers and ships in the background.
 */
import type { DecisionRecord } from './record.ts';

export interface SinkStats {
  /** Records handed to the sink. */
  readonly accepted: number;
  /** Records delivered (written / acknowledged). */
  readonly delivered: number;
  /** Records lost for good (buffer and spool full). Must stay zero. */
  readonly dropped: number;
  /** Records waiting in memory. */
  readonly buffered: number;
  /** Capacity of the memory buffer, records (sinks that have a bound). */
  readonly capacity?: number;
  /** Bytes in the disk spool, and its limit (sinks that spool: Kafka). */
  readonly spoolBytes?: number;
  readonly spoolLimitBytes?: number;
  /**
   * Streams a sink derives from the same records, each with its own accounting (the Kafka sink's
   * optional OCSF Authentication events: "authentications"). Not included in the totals above.
   */
  readonly streams?: Readonly<Record<string, SinkStats>>;
}

export interface DecisionSink {
  write(record: DecisionRecord): void;
  /** Resolves when everything accepted so far is delivered (or spooled). */
  flush(): Promise<void>;
  /** Flushes, then releases resources. */
  close(): Promise<void>;
  stats(): SinkStats;
}

/** Fans one record out to several sinks (e.g. Kafka plus the in-process detector). */
export function teeSink(sinks: readonly DecisionSink[]): DecisionSink {
  return {
    write(r) {
      for (const s of sinks) s.write(r);
    },
    async flush() {
      await Promise.all(sinks.map((s) => s.flush()));
    },
    async close() {
      await Promise.all(sinks.map((s) => s.close()));
    },
    stats() {
      const all = sinks.map((s) => s.stats());
      return {
        accepted: Math.max(0, ...all.map((s) => s.accepted)),
        delivered: Math.min(...all.map((s) => s.delivered)),
        dropped: all.reduce((n, s) => n + s.dropped, 0),
        buffered: all.reduce((n, s) => n + s.buffered, 0),
      };
    },
  };
}
