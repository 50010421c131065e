/**
 * Block acknowledgement from the sidecars' status records: a block written at offset o of
 * the block-list topic is applied by a sidecar whose block-list position is above o, and
 * was applied at the first of its recent advances (status.ts, blocklistApplied) past o.
 * "Slowest" is the longest of those times after the block was added, over the live sidecars
 * that were already running when it was added (one that started later got it in its restore).
 */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { decodeBlockMessage } from '../blocklist/kafka-record.ts';
import { readToEnd } from '../kafka/read-to-end.ts';
import type { SidecarStatus } from './status.ts';

export interface BlockAck {
  /** Live sidecars. */
  readonly sidecars: number;
  /** Of them, those that applied the block. */
  readonly applied: number;
  /** Pods that have not applied it yet. */
  readonly pending: readonly string[];
  /** Longest time from the block's addedAt to a sidecar applying it, ms; null when no running sidecar's history covers it. */
  readonly slowestMs: number | null;
}

export function blockAck(offset: bigint, addedAt: number, live: readonly SidecarStatus[]): BlockAck {
  let applied = 0;
  let slowest: number | null = null;
  const pending: string[] = [];
  for (const s of live) {
    if (s.blocklistPosition === null || BigInt(s.blocklistPosition) <= offset) {
      pending.push(s.pod);
      continue;
    }
    applied++;
    if (Date.parse(s.startedAt) > addedAt) continue;
    const at = (s.blocklistApplied ?? []).find((h) => BigInt(h.position) > offset)?.at;
    if (at === undefined) continue;
    const ms = Math.max(0, Date.parse(at) - addedAt);
    slowest = slowest === null ? ms : Math.max(slowest, ms);
  }
  return { sidecars: live.length, applied, pending: pending.sort(), slowestMs: slowest };
}

/** "applied 3/3, slowest 0.41 s" */
export function ackText(a: BlockAck): string {
  const slowest = a.slowestMs === null ? '' : `, slowest ${(a.slowestMs / 1000).toFixed(2)} s`;
  return `applied ${a.applied}/${a.sidecars}${slowest}`;
}

/** Offset of the record in force for each block-list key (the latest, when it is a block). */
export async function readBlockOffsets(kafka: Kafka, topic: string, timeoutMs = 30_000): Promise<Map<string, bigint>> {
  const latest = new Map<string, bigint | null>();
  const read = await readToEnd({
    kafka,
    topic,
    groupId: `palisade-blocklist-ack-${randomUUID()}`,
    timeoutMs,
    onMessage(m) {
      const d = decodeBlockMessage({ key: m.key, value: m.value, headers: m.headers as Record<string, unknown> });
      if (d.type === 'block') latest.set(d.key, BigInt(m.offset));
      else if (d.type === 'unblock') latest.set(d.key, null);
    },
  });
  if (!read.complete) throw new Error(`reading ${topic} timed out after ${timeoutMs} ms`);
  const out = new Map<string, bigint>();
  for (const [k, v] of latest) if (v !== null) out.set(k, v);
  return out;
}
