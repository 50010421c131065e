/**
 * Reads the compacted detector-state topic back: the latest checkpoint of
 * every client on the given partitions (the state topic is co-partitioned
 * with the decisions topic: a client's checkpoint sits on the partition its
 * decisions arrive on) and the latest population snapshot.
 *
 * The read itself is src/kafka/read-to-end.ts; a reader that crashes for good
 * fails the restore (the caller retries it), one that runs out of time
 * leaves the rest to be replayed.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { readToEnd } from '../../src/kafka/read-to-end.ts';

/** Key of the population snapshot (not a client key: clients are IPs, SPIFFE IDs or subjects). */
export const POPULATION_KEY = '\u0000population';

export interface RestoredState {
  /** Client key -> serialized state, per partition. */
  readonly clients: Map<number, Map<string, Buffer>>;
  readonly population: Buffer | null;
  readonly records: number;
}

export interface RestoreOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  readonly partitions: readonly number[];
  readonly groupPrefix: string;
  readonly logger: Logger;
  /** Called about every second while reading, to keep the caller's group membership alive. */
  readonly heartbeat?: () => Promise<void>;
  /** Give up waiting after this long and use what was read, ms. Default 30000. */
  readonly timeoutMs?: number;
}

export async function readState(o: RestoreOptions): Promise<RestoredState> {
  const wanted = new Set(o.partitions);
  const clients = new Map<number, Map<string, Buffer>>();
  for (const p of wanted) clients.set(p, new Map());
  let population: { buf: Buffer; ts: number } | null = null;
  let records = 0;
  const read = await readToEnd({
    kafka: o.kafka,
    topic: o.topic,
    groupId: `${o.groupPrefix}.restore.${randomUUID()}`,
    // Partition 0 also holds the population snapshot: read it even when not wanted.
    partitions: (p) => wanted.has(p) || p === 0,
    maxBytesPerPartition: 8 * 1024 * 1024,
    ...(o.heartbeat ? { heartbeat: o.heartbeat } : {}),
    ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
    logger: o.logger,
    onMessage(m, p) {
      records++;
      const key = m.key?.toString('utf8') ?? '';
      if (key === POPULATION_KEY) {
        const ts = Number(m.timestamp);
        if (m.value && (!population || ts >= population.ts)) population = { buf: m.value, ts };
        return;
      }
      const own = clients.get(p);
      if (!own) return;
      if (m.value === null || m.value.length === 0) own.delete(key);
      else own.set(key, m.value);
    },
  });
  if (!read.complete) o.logger.warn({ topic: o.topic, partitions: read.pending }, 'detector state restore timed out; continuing with what was read');
  const pop = population as { buf: Buffer; ts: number } | null;
  return { clients, population: pop ? pop.buf : null, records };
}
