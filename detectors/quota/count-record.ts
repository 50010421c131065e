/**
 * The quota counts topic's records: the quota aggregator's checkpoints, one
 * per decisions partition and quota key, written by the instance that owns
 * the partition and followed by every instance (counts.ts adds them up).
 *
 *   key:   JSON [<decisions partition>, "<workload>", "<rule id>", "<quota key>"]
 *   value: JSON QuotaCountRecord, or null (a tombstone: the window ended)
 *
 * A record is valid at `next`: it counts every charge of its key in the
 * partition's events below that offset (and a key with no record, or an older
 * one, had no charge since). Whoever takes the partition over resumes from the
 * committed offset (at most `next`) and skips the key's events below `next`,
 * so nothing is counted twice or missed.
 */

export const QUOTA_COUNT_VERSION = 1;

export interface QuotaCountRecord {
  readonly v: number;
  /** Epoch ms: the start of the window counted. */
  readonly windowStart: number;
  readonly windowMs: number;
  readonly limit: number;
  /** Charges of the key in this partition's events of the window, below `next`. */
  readonly count: number;
  /** The decisions offset the count is valid at (as a decimal string: offsets are 64-bit). */
  readonly next: string;
}

export interface QuotaCountId {
  readonly partition: number;
  readonly workload: string;
  readonly rule: string;
  readonly key: string;
}

export function quotaCountKey(id: QuotaCountId): string {
  return JSON.stringify([id.partition, id.workload, id.rule, id.key]);
}

export type DecodedQuotaCount =
  | { readonly type: 'count'; readonly id: QuotaCountId; readonly record: QuotaCountRecord }
  | { readonly type: 'end'; readonly id: QuotaCountId }
  | { readonly type: 'invalid'; readonly key: string; readonly reason: string };

/** Decodes one consumed message (kafkajs shape). Never throws. */
export function decodeQuotaCount(m: { key: Buffer | null; value: Buffer | null }): DecodedQuotaCount {
  const raw = m.key?.toString('utf8') ?? '';
  const bad = (reason: string): DecodedQuotaCount => ({ type: 'invalid', key: raw.slice(0, 200), reason });
  let parts: unknown;
  try {
    parts = JSON.parse(raw);
  } catch {
    return bad('key is not JSON');
  }
  if (!Array.isArray(parts) || parts.length !== 4 || !Number.isInteger(parts[0]) || !parts.slice(1).every((p) => typeof p === 'string')) return bad('key is not [partition, "workload", "rule", "key"]');
  const [partition, workload, rule, key] = parts as [number, string, string, string];
  const id = { partition, workload, rule, key };
  if (m.value === null || m.value.length === 0) return { type: 'end', id };
  let r: QuotaCountRecord;
  try {
    r = JSON.parse(m.value.toString('utf8')) as QuotaCountRecord;
  } catch {
    return bad('value is not JSON');
  }
  const num = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x >= 0;
  if (typeof r !== 'object' || r === null || !num(r.windowStart) || !num(r.windowMs) || r.windowMs === 0 || !num(r.limit) || !num(r.count) || typeof r.next !== 'string' || !/^\d+$/.test(r.next)) return bad('value lacks windowStart, windowMs, limit, count or next');
  return { type: 'count', id, record: r };
}
