/**
 * The block-list topic's records (compacted, one partition). Written by the
 * detector and by `palisade blocklist add|remove`, read by every sidecar
 * (kafka-feed.ts) and by the detector itself.
 *
 *   key:    "<kind>:<canonical value>", e.g. "ip:203.0.113.7", "spiffeId:spiffe://td/ns/a/sa/b"
 *   value:  JSON BlockRecord (a block), or null (a tombstone: the unblock)
 *   headers on a tombstone: palisade-source (manual | detector | expiry), palisade-time (epoch ms),
 *           palisade-actor (who), palisade-reason
 *
 * Compaction keeps the latest record per key, so reading the topic from the
 * start rebuilds the current list; a tombstone is kept a day
 * (delete.retention.ms) so a sidecar that was away still sees the unblock.
 */
import { BlockEntryError, isBlockKind, makeEntry, type BlockKind, type BlockSource } from './entry.ts';

export const BLOCK_RECORD_VERSION = 1;

export interface BlockRecord {
  readonly v: number;
  readonly kind: BlockKind;
  readonly value: string;
  readonly reason: string;
  readonly source: BlockSource;
  /** Epoch ms; null = until removed. */
  readonly expiresAt: number | null;
  readonly addedAt: number;
  /** Rule id the sidecar records in the decisions it makes, e.g. "detector:rate.burst". */
  readonly rule: string;
  /** Detector blocks: the detection, its severity, the alert and the decision event that was the evidence. */
  readonly detection?: string;
  readonly severity?: string;
  readonly alertId?: string;
  readonly evidenceId?: string;
  /** Who added it (manual blocks: the operator). */
  readonly actor?: string;
}

export type UnblockSource = 'manual' | 'detector' | 'expiry';

export interface Unblock {
  readonly kind: BlockKind;
  readonly value: string;
  readonly source: UnblockSource;
  /** Epoch ms of the unblock. */
  readonly at: number;
  readonly actor: string | null;
  readonly reason: string | null;
}

export interface KafkaMessageOut {
  readonly key: string;
  readonly value: string | null;
  readonly headers: Record<string, string>;
}

/** The canonical kind and value (IPv6 compressed, CIDR to its network...); throws BlockEntryError. */
export function canonicalTarget(kind: string, value: string): { kind: BlockKind; value: string } {
  if (!isBlockKind(kind)) throw new BlockEntryError(`unknown block kind "${kind}"`);
  const e = makeEntry({ kind, value, reason: '-' }, 0);
  return { kind: e.kind, value: e.value };
}

export function blockKey(kind: BlockKind, value: string): string {
  const t = canonicalTarget(kind, value);
  return `${t.kind}:${t.value}`;
}

export function encodeBlock(r: Omit<BlockRecord, 'v'>): KafkaMessageOut {
  const t = canonicalTarget(r.kind, r.value);
  const record: BlockRecord = { v: BLOCK_RECORD_VERSION, ...r, kind: t.kind, value: t.value };
  return { key: `${t.kind}:${t.value}`, value: JSON.stringify(record), headers: { 'palisade-source': r.source } };
}

export function encodeUnblock(u: Unblock): KafkaMessageOut {
  const t = canonicalTarget(u.kind, u.value);
  const headers: Record<string, string> = { 'palisade-source': u.source, 'palisade-time': String(u.at) };
  if (u.actor) headers['palisade-actor'] = u.actor.slice(0, 200);
  if (u.reason) headers['palisade-reason'] = u.reason.slice(0, 200);
  return { key: `${t.kind}:${t.value}`, value: null, headers };
}

export type DecodedBlockMessage =
  | { readonly type: 'block'; readonly key: string; readonly record: BlockRecord }
  | { readonly type: 'unblock'; readonly key: string; readonly unblock: Unblock }
  | { readonly type: 'invalid'; readonly key: string; readonly reason: string };

function header(headers: Record<string, unknown> | undefined, name: string): string | null {
  const h = headers?.[name];
  if (h === undefined || h === null) return null;
  if (Array.isArray(h)) return h.length > 0 ? String(h[0]) : null;
  return Buffer.isBuffer(h) ? h.toString('utf8') : String(h);
}

/** Decodes one consumed message (kafkajs shape: Buffers or null). Never throws. */
export function decodeBlockMessage(m: { key: Buffer | null; value: Buffer | null; headers?: Record<string, unknown>; timestamp?: string }): DecodedBlockMessage {
  const key = m.key?.toString('utf8') ?? '';
  const colon = key.indexOf(':');
  const kind = key.slice(0, colon);
  const value = key.slice(colon + 1);
  if (colon <= 0 || !isBlockKind(kind) || value.length === 0) return { type: 'invalid', key, reason: 'key is not "<kind>:<value>"' };
  if (m.value === null || m.value.length === 0) {
    const src = header(m.headers, 'palisade-source');
    const at = Number(header(m.headers, 'palisade-time') ?? m.timestamp ?? 0);
    return {
      type: 'unblock',
      key,
      unblock: {
        kind,
        value,
        source: src === 'manual' || src === 'expiry' || src === 'detector' ? src : 'manual',
        at: Number.isFinite(at) ? at : 0,
        actor: header(m.headers, 'palisade-actor'),
        reason: header(m.headers, 'palisade-reason'),
      },
    };
  }
  let r: BlockRecord;
  try {
    r = JSON.parse(m.value.toString('utf8')) as BlockRecord;
  } catch {
    return { type: 'invalid', key, reason: 'value is not JSON' };
  }
  if (typeof r !== 'object' || r === null || r.kind !== kind || r.value !== value) return { type: 'invalid', key, reason: 'value does not match its key' };
  if (typeof r.reason !== 'string' || (r.source !== 'detector' && r.source !== 'manual' && r.source !== 'policy')) return { type: 'invalid', key, reason: 'value lacks reason or source' };
  if (r.expiresAt !== null && typeof r.expiresAt !== 'number') return { type: 'invalid', key, reason: 'expiresAt is not epoch ms or null' };
  return { type: 'block', key, record: r };
}
