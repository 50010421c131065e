/**
 * Follows the sidecars topic for as long as the process runs (`palisade detector` wires it)
 * and keeps the fleet gauges current: live sidecars, distinct policy hashes (drift) and
 * sidecars behind on the block list, per workload. A consumer in a group of its own, from
 * the start of the topic, so every instance sees every record.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { Gauge } from 'prom-client';
import type { Logger } from 'pino';
import { retryUntilStopped } from '../kafka/client.ts';
import { liveRecords } from './report.ts';
import { decodeStatus, type SidecarStatus } from './status.ts';

type WorkloadGauge = Gauge<'namespace' | 'workload'>;

export interface FleetGauges {
  readonly fleetSidecars: WorkloadGauge;
  readonly fleetPolicyHashes: WorkloadGauge;
  readonly fleetBehindBlocklist: WorkloadGauge;
}

export interface FleetGaugeRow {
  readonly namespace: string;
  readonly workload: string;
  readonly sidecars: number;
  readonly hashes: number;
  readonly behind: number;
}

/** The gauge values of a set of records (live ones only). */
export function fleetGaugeRows(records: readonly SidecarStatus[], now = Date.now()): FleetGaugeRow[] {
  const live = liveRecords(records, { now });
  const furthest = new Map<string, bigint>();
  for (const r of live) {
    if (r.blocklistPosition === null) continue;
    const p = BigInt(r.blocklistPosition);
    if (p > (furthest.get(r.blocklistTopic) ?? -1n)) furthest.set(r.blocklistTopic, p);
  }
  const rows = new Map<string, { namespace: string; workload: string; sidecars: number; hashes: Set<string>; behind: number }>();
  for (const r of live) {
    const k = `${r.namespace}\u0000${r.workload}`;
    const row = rows.get(k) ?? { namespace: r.namespace, workload: r.workload, sidecars: 0, hashes: new Set<string>(), behind: 0 };
    row.sidecars++;
    row.hashes.add(r.policy?.hash ?? '');
    const max = furthest.get(r.blocklistTopic);
    if (max !== undefined && (r.blocklistPosition === null || BigInt(r.blocklistPosition) < max)) row.behind++;
    rows.set(k, row);
  }
  return [...rows.values()].map((r) => ({ namespace: r.namespace, workload: r.workload, sidecars: r.sidecars, hashes: r.hashes.size, behind: r.behind }));
}

export function setFleetGauges(g: FleetGauges, rows: readonly FleetGaugeRow[]): void {
  g.fleetSidecars.reset();
  g.fleetPolicyHashes.reset();
  g.fleetBehindBlocklist.reset();
  for (const r of rows) {
    const labels = { namespace: r.namespace, workload: r.workload };
    g.fleetSidecars.set(labels, r.sidecars);
    g.fleetPolicyHashes.set(labels, r.hashes);
    g.fleetBehindBlocklist.set(labels, r.behind);
  }
}

export interface FleetWatch {
  close(): Promise<void>;
}

export function startFleetWatch(o: { kafka: Kafka; topic: string; gauges: FleetGauges; logger: Logger; refreshMs?: number }): FleetWatch {
  const latest = new Map<string, SidecarStatus>();
  let closed = false;
  const consumer = o.kafka.consumer({ groupId: `palisade-fleet-watch-${randomUUID()}`, allowAutoTopicCreation: false, retry: retryUntilStopped(() => closed) });
  const refresh = () => setFleetGauges(o.gauges, fleetGaugeRows([...latest.values()]));
  const timer = setInterval(refresh, o.refreshMs ?? 5000);
  timer.unref();
  const started = (async () => {
    await consumer.connect();
    await consumer.subscribe({ topics: [o.topic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        const key = message.key?.toString('utf8');
        if (key === undefined) return;
        const s = message.value === null ? null : decodeStatus(message.value);
        if (s) latest.set(key, s);
        else if (message.value === null) latest.delete(key);
      },
    });
  })().catch((err: unknown) => o.logger.warn({ err: (err as Error).message, topic: o.topic }, 'fleet status not followed; the palisade_fleet_* gauges stay empty'));
  return {
    async close() {
      closed = true;
      clearInterval(timer);
      await started;
      await consumer.disconnect().catch(() => undefined);
    },
  };
}
