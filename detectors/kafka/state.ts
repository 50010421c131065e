/**
 * State restore on assignment: the checkpoints of the partitions just assigned are read back from
 * the state topic (restore.ts) into the engine before their first event is processed, plus the
 * population snapshot when the engine has none. One restore runs at a time; a failed one is
 * retried with backoff (restoreAssigned), not left to the first batch of a partition, which may
 * not come for a long time on a quiet topic and would leave the detector unready.
 */
import type { Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { backoffMs } from '../../src/util/backoff.ts';
import type { Detector } from '../detector.ts';
import type { SerializedClient } from '../engine/client-state.ts';
import type { DetectorMetrics } from '../metrics.ts';
import type { OwnedPartitions } from './partitions.ts';
import { readState } from './restore.ts';

/** Longest pause between two attempts to restore the assigned partitions' state, ms. */
const RESTORE_RETRY_MAX_MS = 10_000;

export interface StateRestorer {
  /** Restores the owned partitions among `partitions` not restored yet (one pass for all of them). */
  restore(partitions: readonly number[], heartbeat?: () => Promise<void>): Promise<void>;
  /** restore() retried until it succeeds or `stopped()`; resolves true when it succeeded. */
  restoreAssigned(partitions: readonly number[]): Promise<boolean>;
  /** Clients restored from checkpoints so far. */
  restoredClients(): number;
}

export interface StateRestorerOptions {
  readonly kafka: Kafka;
  readonly stateTopic: string;
  readonly groupPrefix: string;
  readonly detector: Detector;
  readonly partitions: OwnedPartitions;
  readonly metrics: DetectorMetrics | undefined;
  readonly log: Logger;
  readonly stopped: () => boolean;
}

export function createStateRestorer(o: StateRestorerOptions): StateRestorer {
  const { detector, partitions: parts, log } = o;
  let restoredClients = 0;
  let restoring: Promise<void> | null = null;

  async function restore(partitions: readonly number[], heartbeat?: () => Promise<void>): Promise<void> {
    // Another caller's failure is its own to report; this one tries for itself.
    while (restoring) await restoring.catch(() => undefined);
    const todo = partitions.filter((p) => parts.owned.has(p) && !parts.restored.has(p));
    if (todo.length === 0) return;
    restoring = (async () => {
      const t0 = Date.now();
      const state = await readState({ kafka: o.kafka, topic: o.stateTopic, partitions: todo, groupPrefix: o.groupPrefix, logger: log, ...(heartbeat ? { heartbeat } : {}) });
      const engine = detector.engine;
      let n = 0;
      for (const [p, clients] of state.clients) {
        if (!parts.owned.has(p)) continue;
        for (const [key, buf] of clients) {
          // Events of this client may already be in memory (a batch before the restore): the checkpoint is older.
          if (engine.clients.has(key)) continue;
          try {
            engine.restoreClient(JSON.parse(buf.toString('utf8')) as SerializedClient, p);
            n++;
          } catch (err) {
            log.warn({ err: (err as Error).message, partition: p, key: key.slice(0, 100) }, 'unreadable checkpoint skipped');
          }
        }
      }
      for (const p of todo) if (parts.owned.has(p)) parts.restored.add(p);
      if (state.population && engine.population.samples === 0) {
        try {
          engine.population.load(JSON.parse(state.population.toString('utf8')));
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'unreadable population snapshot skipped');
        }
      }
      restoredClients += n;
      o.metrics?.clientsTracked.set(engine.clients.size);
      log.info({ partitions: todo, clients: n, records: state.records, ms: Date.now() - t0 }, 'baselines restored from the state topic');
    })();
    try {
      await restoring;
    } finally {
      restoring = null;
    }
  }

  async function restoreAssigned(partitions: readonly number[]): Promise<boolean> {
    for (let attempt = 0; !o.stopped(); attempt++) {
      try {
        // Partitions revoked meanwhile are skipped by restore(): the next assignment's call owns them.
        await restore(partitions);
        return true;
      } catch (err) {
        if (o.stopped()) return false;
        const wait = backoffMs(attempt, 500, RESTORE_RETRY_MAX_MS);
        log.warn({ err: (err as Error).message, retryInMs: wait }, 'detector state restore failed; retrying');
        await new Promise((r) => setTimeout(r, wait).unref());
      }
    }
    return false;
  }

  return { restore, restoreAssigned, restoredClients: () => restoredClients };
}
