/**
 * Block acknowledgement for `palisade blocklist list --acks` and `palisade blocklist add
 * --wait`: how many live sidecars following this block-list topic have applied each block,
 * and the slowest time to apply, from their status records (src/fleet/ack.ts).
 */
import { blockKey, type BlockRecord } from '../../blocklist/kafka-record.ts';
import { blockAck, readBlockOffsets, type BlockAck } from '../../fleet/ack.ts';
import { liveRecords, readFleet } from '../../fleet/report.ts';
import type { SidecarStatus } from '../../fleet/status.ts';
import type { CliKafka } from '../kafka-required.ts';

async function liveFollowers(k: CliKafka): Promise<SidecarStatus[]> {
  const topic = k.settings.kafkaTopicBlocklist;
  const records = await k.use(() => readFleet(k.kafka, k.settings.kafkaTopicSidecars), k.settings.kafkaTopicSidecars);
  return liveRecords(records).filter((r) => r.blocklistTopic === topic);
}

/** The acknowledgement of each block in force, by its key. */
export async function acksOf(k: CliKafka, entries: readonly BlockRecord[]): Promise<Map<string, BlockAck>> {
  const topic = k.settings.kafkaTopicBlocklist;
  const [offsets, live] = await Promise.all([k.use(() => readBlockOffsets(k.kafka, topic), topic), liveFollowers(k)]);
  const out = new Map<string, BlockAck>();
  for (const e of entries) {
    const key = blockKey(e.kind, e.value);
    const offset = offsets.get(key);
    if (offset !== undefined) out.set(key, blockAck(offset, e.addedAt, live));
  }
  return out;
}

/**
 * Waits until every live sidecar following the topic has applied the block just published
 * (or `timeoutMs` passes); returns the last acknowledgement seen.
 */
export async function waitForAck(k: CliKafka, r: BlockRecord, timeoutMs: number): Promise<BlockAck> {
  const topic = k.settings.kafkaTopicBlocklist;
  const offset = (await k.use(() => readBlockOffsets(k.kafka, topic), topic)).get(blockKey(r.kind, r.value));
  const end = Date.now() + timeoutMs;
  for (;;) {
    const live = await liveFollowers(k);
    // A block superseded meanwhile (removed, re-added) is acknowledged by a position past the newer record too.
    const ack = blockAck(offset ?? 0n, r.addedAt, live);
    if ((ack.sidecars > 0 && ack.pending.length === 0) || Date.now() >= end) return ack;
    await new Promise((res) => setTimeout(res, 250));
  }
}
