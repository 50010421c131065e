/**
 * The decision sinks' Prometheus metrics, label sink = 'kafka' | 'ndjson' | 'custom' | ...: read
 * from a sink's own stats() at scrape time (watchSink), so the request path does nothing for
 * them and the figures are the sink's accounting (accepted, delivered, dropped, buffered).
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { SinkStats } from '../sink.ts';

export interface SinkMetrics {
  readonly decisionsPublished: Counter<'sink'>;
  readonly decisionsDropped: Counter<'sink'>;
  readonly decisionBuffer: Gauge<'sink'>;
  readonly decisionBufferCapacity: Gauge<'sink'>;
  readonly spoolBytes: Gauge<'sink'>;
  readonly spoolLimitBytes: Gauge<'sink'>;
  /** Reads a sink's stats at scrape time into these metrics. Do not also set them by hand for the same sink name. */
  watchSink(sink: string, stats: () => SinkStats): void;
}

export function createSinkMetrics(r: Registry): SinkMetrics {
  // Counters cannot be set; watchSink turns a sink's running totals into increments at scrape time.
  const watched = new Map<string, { stats: () => SinkStats; delivered: number; dropped: number }>();
  // collect runs before this metric is serialised; it is registered before the other sink
  // metrics, so every sink value of one scrape comes from the same stats() read.
  const decisionsPublished = new Counter({
    name: 'palisade_decision_events_published_total',
    help: 'Decision events delivered by a sink (written or acknowledged by the broker).',
    labelNames: ['sink'] as const,
    registers: [r],
    collect: syncSinks,
  });
  const decisionsDropped = new Counter({ name: 'palisade_decision_events_dropped_total', help: 'Decision events lost for good (buffer and spool full). Must stay zero.', labelNames: ['sink'] as const, registers: [r] });
  const decisionBuffer = new Gauge({ name: 'palisade_decision_buffer_events', help: 'Decision events waiting in the sink\'s memory buffer.', labelNames: ['sink'] as const, registers: [r] });
  const decisionBufferCapacity = new Gauge({ name: 'palisade_decision_buffer_capacity_events', help: 'Capacity of the sink\'s memory buffer, events.', labelNames: ['sink'] as const, registers: [r] });
  const spoolBytes = new Gauge({ name: 'palisade_decision_spool_bytes', help: 'Bytes of decision events in the sink\'s disk spool (broker unreachable or slow).', labelNames: ['sink'] as const, registers: [r] });
  const spoolLimitBytes = new Gauge({ name: 'palisade_decision_spool_limit_bytes', help: 'Size limit of the sink\'s disk spool, bytes.', labelNames: ['sink'] as const, registers: [r] });

  function syncSinks(): void {
    for (const [sink, w] of watched) {
      let s: SinkStats;
      try {
        s = w.stats();
      } catch {
        continue; // a sink being closed must not break the scrape
      }
      if (s.delivered > w.delivered) decisionsPublished.inc({ sink }, s.delivered - w.delivered);
      if (s.dropped > w.dropped) decisionsDropped.inc({ sink }, s.dropped - w.dropped);
      w.delivered = Math.max(w.delivered, s.delivered);
      w.dropped = Math.max(w.dropped, s.dropped);
      decisionBuffer.set({ sink }, s.buffered);
      if (s.capacity !== undefined) decisionBufferCapacity.set({ sink }, s.capacity);
      if (s.spoolBytes !== undefined) spoolBytes.set({ sink }, s.spoolBytes);
      if (s.spoolLimitBytes !== undefined) spoolLimitBytes.set({ sink }, s.spoolLimitBytes);
    }
  }
  return {
    decisionsPublished,
    decisionsDropped,
    decisionBuffer,
    decisionBufferCapacity,
    spoolBytes,
    spoolLimitBytes,
    watchSink(sink, stats) {
      watched.set(sink, { stats, delivered: 0, dropped: 0 });
      decisionsPublished.inc({ sink }, 0);
      decisionsDropped.inc({ sink }, 0);
      decisionBuffer.set({ sink }, 0);
    },
  };
}
