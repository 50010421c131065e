/**
 * Follows the sidecars topic for as long as the process runs (`palisade detector` wires it)
 * and keeps the fleet gauges current: live sidecars, distinct policy hashes (drift) and
 * sidecars behind on the block list, per workload. A consumer in a group of its own, from
 * the start of the topic, so every instance sees every record.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import type { Gauge, Histogram } from 'prom-client';
import { decodeBlockMessage } from '../blocklist/kafka-record.ts';
import { blockAck } from './ack.ts';
import type { Logger } from 'pino';
import { retryUntilStopped } from '../kafka/client.ts';
import { liveRecords } from './report.ts';
import { decodeStatus, type SidecarStatus } from './status.ts';

type WorkloadGauge = Gauge<'namespace' | 'workload'>;

export interface FleetGauges {
  readonly fleetSidecars: WorkloadGauge;
  readonly fleetPolicyHashes: WorkloadGauge;
  readonly fleetBehindBlocklist: WorkloadGauge;
  /** Observed once per detector block, when every live sidecar following its topic applied it. */
  readonly blockToEnforce?: Histogram;
}

/** A block waiting for the fleet to apply it: given up after this long, ms. */
const ENFORCE_WAIT_MS = 10 * 60_000;

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

export function startFleetWatch(o: { kafka: Kafka; topic: string; gauges: FleetGauges; logger: Logger; refreshMs?: number; blocklistTopic?: string }): FleetWatch {
  const latest = new Map<string, SidecarStatus>();
  let closed = false;
  const consumer = o.kafka.consumer({ groupId: `palisade-fleet-watch-${randomUUID()}`, allowAutoTopicCreation: false, retry: retryUntilStopped(() => closed) });
  // The detector's own blocks published since this watch started, by offset: time to enforce across the fleet.
  const since = Date.now();
  const pending = new Map<bigint, number>();
  const blocks = o.blocklistTopic && o.gauges.blockToEnforce ? o.kafka.consumer({ groupId: `palisade-fleet-blocks-${randomUUID()}`, allowAutoTopicCreation: false, retry: retryUntilStopped(() => closed) }) : null;
  const enforce = () => {
    if (pending.size === 0) return;
    const live = liveRecords([...latest.values()]).filter((r) => r.blocklistTopic === o.blocklistTopic);
    for (const [offset, addedAt] of pending) {
      const a = blockAck(offset, addedAt, live);
      if (a.sidecars > 0 && a.pending.length === 0 && a.slowestMs !== null) {
        o.gauges.blockToEnforce?.observe(a.slowestMs / 1000);
        pending.delete(offset);
      } else if (Date.now() - addedAt > ENFORCE_WAIT_MS) pending.delete(offset);
    }
  };
  const refresh = () => {
    setFleetGauges(o.gauges, fleetGaugeRows([...latest.values()]));
    enforce();
  };
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
  const blocksStarted = (async () => {
    if (!blocks || !o.blocklistTopic) return;
    await blocks.connect();
    await blocks.subscribe({ topics: [o.blocklistTopic], fromBeginning: false });
    await blocks.run({
      eachMessage: async ({ message }) => {
        const d = decodeBlockMessage({ key: message.key, value: message.value, headers: message.headers as Record<string, unknown> });
        if (d.type === 'block' && d.record.source === 'detector' && d.record.addedAt >= since) pending.set(BigInt(message.offset), d.record.addedAt);
      },
    });
  })().catch((err: unknown) => o.logger.warn({ err: (err as Error).message, topic: o.blocklistTopic }, 'block list not followed; palisade_detector_block_to_enforce_seconds stays empty'));
  return {
    async close() {
      closed = true;
      clearInterval(timer);
      await Promise.all([started, blocksStarted]);
      await Promise.all([consumer.disconnect().catch(() => undefined), blocks?.disconnect().catch(() => undefined)]);
    },
  };
}
