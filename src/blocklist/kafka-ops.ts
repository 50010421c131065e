/**
 * Operator actions on the block-list topic, for `palisade blocklist` (and
 * tests): read the list as it is in force, publish a manual block, publish a
 * manual unblock (tombstone). Every sidecar applies them within a fetch wait
 * (kafka-feed.ts); the detector reads them too, and a manual unblock wins over
 * it until it sees new evidence.
 */
import { randomUUID } from 'node:crypto';
import kafkajs, { type Kafka } from 'kafkajs';
import { readToEnd } from '../kafka/read-to-end.ts';
import type { BlockKind } from './entry.ts';
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
