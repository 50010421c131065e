/**
 * Operator actions on the block-list topic, for `palisade blocklist` (and
 * tests): read the list as it is in force, publish a manual block, publish a
 * manual unblock (tombstone), lift every block matching a filter at once (an
 * undo of wrong automatic blocks). Every sidecar applies them within a fetch wait
 * (kafka-feed.ts); the detector reads them too, and a manual unblock wins over
 * it until it sees new evidence.
 */
import { randomUUID } from 'node:crypto';
import kafkajs, { type Kafka } from 'kafkajs';
import { readToEnd } from '../kafka/read-to-end.ts';
import type { BlockKind, BlockSource } from './entry.ts';
import { decodeBlockMessage, encodeBlock, encodeUnblock, type BlockRecord } from './kafka-record.ts';

// kafkajs is CommonJS: named exports come from the default export. The default (Java-compatible
// murmur2) partitioner, chosen explicitly, also silences kafkajs' v2 migration warning.
const { Partitioners } = kafkajs;

/** Reads the topic from the start to its current end; returns the latest record per key that is still in force. */
export async function readBlockList(kafka: Kafka, topic: string, now = Date.now(), timeoutMs = 30_000): Promise<BlockRecord[]> {
  const latest = new Map<string, BlockRecord | null>();
  const read = await readToEnd({
    kafka,
    topic,
    groupId: `palisade-blocklist-cli-${randomUUID()}`,
    timeoutMs,
    onMessage(m) {
      const d = decodeBlockMessage({ key: m.key, value: m.value, headers: m.headers as Record<string, unknown> });
      if (d.type === 'block') latest.set(d.key, d.record);
      else if (d.type === 'unblock') latest.set(d.key, null);
    },
  });
  // An operator must not see part of the list as the list.
  if (!read.complete) throw new Error(`reading ${topic} timed out after ${timeoutMs} ms`);
  const out: BlockRecord[] = [];
  for (const r of latest.values()) if (r && (r.expiresAt === null || r.expiresAt > now)) out.push(r);
  return out.sort((a, b) => b.addedAt - a.addedAt);
}

export interface ManualBlock {
  readonly kind: BlockKind;
  readonly value: string;
  readonly reason: string;
  /** Epoch ms; null = until removed. */
  readonly expiresAt: number | null;
  readonly actor: string;
}

async function send(kafka: Kafka, topic: string, message: { key: string; value: string | null; headers: Record<string, string> }): Promise<void> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages: [message] });
  } finally {
    await producer.disconnect();
  }
}

/** Publishes a manual block; returns the record as written (canonical value). */
export async function publishManualBlock(kafka: Kafka, topic: string, b: ManualBlock, now = Date.now()): Promise<BlockRecord> {
  const msg = encodeBlock({ kind: b.kind, value: b.value, reason: b.reason, source: 'manual', expiresAt: b.expiresAt, addedAt: now, rule: `manual:${b.kind}`, actor: b.actor });
  await send(kafka, topic, msg);
  return JSON.parse(msg.value as string) as BlockRecord;
}

/** Publishes a manual unblock (tombstone). */
export async function publishManualUnblock(kafka: Kafka, topic: string, u: { kind: BlockKind; value: string; actor: string; reason: string | null }, now = Date.now()): Promise<string> {
  const msg = encodeUnblock({ kind: u.kind, value: u.value, source: 'manual', at: now, actor: u.actor, reason: u.reason });
  await send(kafka, topic, msg);
  return msg.key;
}

/** Sources a lift can select by (every source of a block record). */
export const BLOCK_SOURCES_LIFTABLE: readonly BlockSource[] = ['detector', 'manual', 'policy'];

/** Which blocks in force an undo lifts: every given condition must hold (at least one is given). */
export interface BlockFilter {
  /** Who added the block. */
  readonly source?: BlockSource;
  /** Added at or after this time, epoch ms ("--since 10m" = now - 10 min). */
  readonly addedSince?: number;
  /** The block's rule (e.g. "detector:auth.failures"), or its detection (e.g. "auth.failures"). */
  readonly rule?: string;
}

export function matchesBlockFilter(r: BlockRecord, f: BlockFilter): boolean {
  if (f.source !== undefined && r.source !== f.source) return false;
  if (f.addedSince !== undefined && !(r.addedAt >= f.addedSince)) return false;
  if (f.rule !== undefined && r.rule !== f.rule && r.detection !== f.rule) return false;
  return true;
}

/** Tombstones in one produce request, at most (the topic is one partition: they keep their order). */
const LIFT_CHUNK = 500;

/**
 * Lifts every block in force that matches `filter`: one tombstone each (source manual, with the
 * actor and the reason), so every sidecar lets those clients in again as for any unblock, and the
 * detector does not block them again for the evidence it already had. Returns the blocks lifted
 * (none published when `dryRun`). A filter without any condition is refused: it would lift
 * everything, manual blocks included.
 */
export async function liftBlocks(
  kafka: Kafka,
  topic: string,
  filter: BlockFilter,
  u: { readonly actor: string; readonly reason: string; readonly dryRun?: boolean },
  now = Date.now(),
): Promise<BlockRecord[]> {
  if (filter.source === undefined && filter.addedSince === undefined && filter.rule === undefined) throw new Error('liftBlocks: give at least one of source, addedSince, rule');
  const lifted = (await readBlockList(kafka, topic, now)).filter((r) => matchesBlockFilter(r, filter));
  if (lifted.length === 0 || u.dryRun) return lifted;
  const messages = lifted.map((r) => encodeUnblock({ kind: r.kind, value: r.value, source: 'manual', at: now, actor: u.actor, reason: u.reason }));
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    for (let i = 0; i < messages.length; i += LIFT_CHUNK) await producer.send({ topic, acks: -1, messages: messages.slice(i, i + LIFT_CHUNK) });
  } finally {
    await producer.disconnect();
  }
  return lifted;
}
