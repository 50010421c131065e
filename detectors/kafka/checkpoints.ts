/**
 * Checkpoints: the clients changed since the last checkpoint (and tombstones for evicted ones) are
 * written to the compacted state topic, into the partition their decisions come from, then the
 * consumer offsets those snapshots cover are committed. An instance taking a partition over thus
 * restores the state and replays exactly the events after it. A failed write leaves the clients
 * dirty for the next interval, and commits nothing.
 */
import type { Consumer, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import type { DetectorEngine } from '../engine/engine.ts';
import type { DetectorMetrics } from '../metrics.ts';
import type { OwnedPartitions } from './partitions.ts';
import { POPULATION_KEY } from './restore.ts';
import { singleFlight } from '../../src/util/single-flight.ts';

/** State records per produce request. */
const STATE_CHUNK = 500;

export interface Checkpointer {
  /** Writes changed state and commits offsets now (joins a checkpoint already running). */
  checkpoint(): Promise<void>;
  /** Checkpoints written so far. */
  count(): number;
}

export interface CheckpointerOptions {
  readonly producer: Producer;
  readonly consumer: Consumer;
  readonly engine: DetectorEngine;
  readonly partitions: OwnedPartitions;
  readonly stateTopic: string;
  readonly decisionsTopic: string;
  readonly metrics: DetectorMetrics | undefined;
  readonly log: Logger;
}

export function createCheckpointer(o: CheckpointerOptions): Checkpointer {
  const { engine: e, partitions: parts } = o;
  const m = o.metrics;
  let count = 0;

  async function write(): Promise<void> {
    const written: { dirty: boolean }[] = [];
    const messages: { partition: number; key: string; value: string | null }[] = [];
    for (const c of e.dirtyClients()) {
      if (!parts.owned.has(c.partition)) continue;
      messages.push({ partition: c.partition, key: c.key, value: JSON.stringify(c.toJSON()) });
      c.dirty = false;
      written.push(c);
    }
    for (const ev of e.drainEvicted()) if (parts.owned.has(ev.partition)) messages.push({ partition: ev.partition, key: ev.key, value: null });
    if (parts.owned.size > 0 && e.population.samples > 0) messages.push({ partition: 0, key: POPULATION_KEY, value: JSON.stringify(e.population.toJSON()) });
    // Offsets covered by this snapshot; events processed during the write are committed next time.
    const offsets = [...parts.next].filter(([p]) => parts.owned.has(p)).map(([partition, offset]) => ({ topic: o.decisionsTopic, partition, offset: offset.toString() }));
    try {
      for (let i = 0; i < messages.length; i += STATE_CHUNK) {
        await o.producer.send({ topic: o.stateTopic, acks: -1, messages: messages.slice(i, i + STATE_CHUNK) });
      }
      if (offsets.length > 0) await o.consumer.commitOffsets(offsets);
      count++;
      m?.checkpoints.inc({ result: 'ok' });
    } catch (err) {
      for (const c of written) c.dirty = true;
      m?.checkpoints.inc({ result: 'error' });
      o.log.warn({ err: (err as Error).message }, 'checkpoint failed; retrying at the next interval');
    }
    m?.clientsTracked.set(e.clients.size);
  }

  const checkpoint = singleFlight(write);

  return { checkpoint, count: () => count };
}
