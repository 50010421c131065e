/**
 * The quota topic's records (compacted, like the block list's): written by
 * the detector's quota aggregator (detectors/quota/), followed by every
 * sidecar (quota-feed.ts).
 *
 *   key:   JSON ["<workload>", "<rule id>", "<quota key>"]; the workload is the policy's
 *          metadata.name, shared by the replicas of one service
 *   value: JSON QuotaRecord, or null (a tombstone: the entry is over; written after `until`)
 *
 * Two states. "over": the key has used its quota; every sidecar refuses it
 * until `until` (the end of the window). "near": the key has used most of
 * it; each sidecar lets through at most `share` more requests of the key
 * (its fair part of what is left) until the window ends or "over" arrives.
 * That bounds the overshoot while the "over" record travels.
 */

export const QUOTA_RECORD_VERSION = 1;

export interface QuotaRecord {
  readonly v: number;
  readonly workload: string;
  readonly rule: string;
  readonly key: string;
  readonly state: 'over' | 'near';
  /** Epoch ms: the end of the window; the entry means nothing after it. */
  readonly until: number;
  /** Epoch ms: the start of the window counted. */
  readonly windowStart: number;
  readonly limit: number;
  /** Requests counted in the window when the record was written. */
  readonly count: number;
  /** Sidecars seen serving the workload in the window. */
  readonly sidecars: number;
  /** "near": requests each sidecar may still let through in the window. */
  readonly share: number;
  /** Epoch ms the aggregator wrote it (time from crossing to enforcement is measured from it). */
  readonly at: number;
}

export function quotaTopicKey(workload: string, rule: string, key: string): string {
  return JSON.stringify([workload, rule, key]);
}

/** The in-memory key a sidecar looks up: workload, rule and quota key joined by NUL (no JSON on the request path). */
export function quotaStoreKey(workload: string, rule: string, key: string): string {
  return `${workload}\u0000${rule}\u0000${key}`;
}

export function encodeQuota(r: Omit<QuotaRecord, 'v'>): { key: string; value: string } {
  return { key: quotaTopicKey(r.workload, r.rule, r.key), value: JSON.stringify({ v: QUOTA_RECORD_VERSION, ...r }) };
}

export type DecodedQuotaMessage =
  | { readonly type: 'quota'; readonly record: QuotaRecord }
  | { readonly type: 'end'; readonly workload: string; readonly rule: string; readonly key: string }
  | { readonly type: 'invalid'; readonly key: string; readonly reason: string };

/** Decodes one consumed message (kafkajs shape). Never throws. */
export function decodeQuotaMessage(m: { key: Buffer | null; value: Buffer | null }): DecodedQuotaMessage {
  const raw = m.key?.toString('utf8') ?? '';
  let parts: unknown;
  try {
    parts = JSON.parse(raw);
  } catch {
    return { type: 'invalid', key: raw.slice(0, 200), reason: 'key is not JSON' };
  }
  if (!Array.isArray(parts) || parts.length !== 3 || !parts.every((p) => typeof p === 'string')) return { type: 'invalid', key: raw.slice(0, 200), reason: 'key is not ["workload", "rule", "key"]' };
  const [workload, rule, key] = parts as [string, string, string];
  if (m.value === null || m.value.length === 0) return { type: 'end', workload, rule, key };
  let r: QuotaRecord;
  try {
    r = JSON.parse(m.value.toString('utf8')) as QuotaRecord;
  } catch {
    return { type: 'invalid', key: raw.slice(0, 200), reason: 'value is not JSON' };
  }
  if (typeof r !== 'object' || r === null || r.workload !== workload || r.rule !== rule || r.key !== key) return { type: 'invalid', key: raw.slice(0, 200), reason: 'value does not match its key' };
  if ((r.state !== 'over' && r.state !== 'near') || typeof r.until !== 'number' || typeof r.share !== 'number') return { type: 'invalid', key: raw.slice(0, 200), reason: 'value lacks state, until or share' };
  return { type: 'quota', record: r };
}
