/**
 * The quota aggregator's counting, with no I/O: windowed counts per
 * (workload, rule, key) from the decisions' `quotas` facts, and what to
 * publish when a key nears or reaches its quota. Windows are fixed and
 * aligned to the epoch, so every sidecar and the aggregator agree on where a
 * window starts without talking to each other.
 *
 * Counts are kept per decisions partition. Decisions are keyed by client, so
 * a key that spans clients (a tenant claim) is spread over partitions, which
 * several detector instances may own: each instance counts the partitions it
 * owns live and publishes those counts (count-record.ts, every checkpoint);
 * for the partitions it does not own it holds the latest counts their owners
 * published. A key's total is the sum of both, and "near"/"over" are decided
 * on the total. The other instances' part is as old as their last checkpoint
 * (plus the time the record travels): that delay is the price of needing no
 * coordination on the hot path.
 *
 * "near": once a key has used NEAR_FRACTION of its quota, each sidecar gets
 * a fair share of what is left, less what is estimated to be in flight (the
 * key's rate over the window so far, times twice the stream's lag, plus the
 * age of other instances' counts near the quota, when it has some: requests
 * already let through but not yet counted, and those let through while the
 * record travels). Sidecars then
 * stop by themselves at their share, so the overshoot no longer depends on
 * the time an "over" record takes to reach them.
 */
import type { DecisionRecord } from '../../src/decision/record.ts';
import type { QuotaRecord } from '../../src/ratelimit/quota-record.ts';
import type { QuotaCountId, QuotaCountRecord } from './count-record.ts';

export const NEAR_FRACTION = 0.9;
/** A sidecar not seen for this long no longer counts in the fair share, ms. */
const SIDECAR_SEEN_MS = 60_000;
/**
 * An event older than this when counted is being replayed (after a restart or a rebalance): it
 * still counts, but gives no fair share, whose in-flight estimate would be meaningless then.
 */
const REPLAY_LAG_MS = 5000;
/**
 * How old other instances' counts are once a key is near its quota: they then checkpoint within
 * 100 ms (the aggregator's early checkpoint), and the record takes a fetch wait (50 ms) and a
 * write to arrive, ms. Used in the fair share's in-flight estimate.
 */
const REMOTE_NEAR_MS = 200;

/** One owned partition's live count of a key. */
interface Part {
  count: number;
  /** Restored from a checkpoint valid at this offset: the key's events below it are in `count` already. */
  skipBefore: bigint | null;
  /** Changed since the last checkpoint. */
  dirty: boolean;
  /** Written to the counts topic at least once (its record needs a tombstone when the window ends). */
  written: boolean;
}

interface Count {
  readonly workload: string;
  readonly rule: string;
  readonly key: string;
  windowStart: number;
  windowMs: number;
  limit: number;
  /** Owned partitions' live counts of this window. */
  readonly parts: Map<number, Part>;
  near: boolean;
  over: boolean;
}

/** The latest count an owner published for one partition (any partition, ours included). */
interface Published {
  readonly windowStart: number;
  readonly windowMs: number;
  readonly limit: number;
  readonly count: number;
  readonly next: bigint;
}

export interface QuotaCountsOptions {
  /** Publish "near" records with fair shares (default true); false: "over" only. */
  readonly fairShare?: boolean;
  /** How old other instances' published counts may be (their checkpoint interval), ms; widens the in-flight estimate. Default 1000. */
  readonly remoteDelayMs?: number;
}

/** A checkpoint record to write: a count of an owned partition (or a tombstone, `record: null`). */
export interface CountCheckpoint {
  readonly id: QuotaCountId;
  readonly record: Omit<QuotaCountRecord, 'v'> | null;
}

const joinKey = (workload: string, rule: string, key: string) => `${workload}\u0000${rule}\u0000${key}`;

export class QuotaCounts {
  readonly #counts = new Map<string, Count>();
  /** Key -> its names and, per partition, the latest count published for it. */
  readonly #published = new Map<string, { readonly workload: string; readonly rule: string; readonly key: string; readonly parts: Map<number, Published> }>();
  /** The decisions partitions this instance owns (counted live). */
  readonly #owned: ReadonlySet<number>;
  /** workload -> sidecar ("ip:port" of its listener) -> last seen, epoch ms. */
  readonly #sidecars = new Map<string, Map<string, number>>();
  readonly #fairShare: boolean;
  readonly #remoteDelayMs: number;
  /** A key near its quota changed since takeHot(): its count should reach the other instances soon. */
  #hot = false;
  /** Charges counted live (events, not restored counts). */
  counted = 0;
  /** Counts taken over from checkpoints. */
  restored = 0;

  /** `owned`: the partitions counted live (the caller keeps it current); default: partition 0 only. */
  constructor(o: QuotaCountsOptions = {}, owned: ReadonlySet<number> = new Set([0])) {
    this.#fairShare = o.fairShare ?? true;
    this.#remoteDelayMs = o.remoteDelayMs ?? 1000;
    this.#owned = owned;
  }

  get size(): number {
    return this.#counts.size;
  }

  #sidecarsOf(workload: string, now: number): number {
    const m = this.#sidecars.get(workload);
    if (!m) return 1;
    let n = 0;
    for (const [id, at] of m) {
      if (now - at > SIDECAR_SEEN_MS) m.delete(id);
      else n++;
    }
    return Math.max(1, n);
  }

  /** Sets `c` to the window starting at `ws` (forgetting the previous window's counts). */
  #reset(c: Count, ws: number, windowMs: number): void {
    Object.assign(c, { windowStart: ws, windowMs, near: false, over: false });
    for (const part of c.parts.values()) Object.assign(part, { count: 0, skipBefore: null, dirty: true });
  }

  /** Live counts of owned partitions plus the latest published counts of the others, for c's window. */
  #total(c: Count, k: string): { total: number; remote: number } {
    let total = 0;
    for (const part of c.parts.values()) total += part.count;
    let remote = 0;
    const pub = this.#published.get(k);
    if (pub) for (const [p, x] of pub.parts) if (!this.#owned.has(p) && x.windowStart === c.windowStart && x.windowMs === c.windowMs) remote += x.count;
    return { total: total + remote, remote };
  }

  /** The key's total in its current window (tests, logs). */
  total(workload: string, rule: string, key: string): number {
    const k = joinKey(workload, rule, key);
    const c = this.#counts.get(k);
    return c ? this.#total(c, k).total : 0;
  }

  /**
   * Counts one decision of `partition` at `offset`; returns the records to publish (none for most).
   * `now`: the aggregator's clock.
   */
  add(r: DecisionRecord, now: number, partition = 0, offset = -1n): QuotaRecord[] {
    const charges = r.quotas;
    if (!charges || charges.length === 0) return [];
    const workload = r.policy?.name ?? '';
    let seen = this.#sidecars.get(workload);
    if (!seen) this.#sidecars.set(workload, (seen = new Map()));
    seen.set(`${r.server.ip}:${r.server.port}`, r.time);
    const out: QuotaRecord[] = [];
    for (const q of charges) {
      const ws = Math.floor(r.time / q.windowMs) * q.windowMs;
      const k = joinKey(workload, q.rule, q.key);
      let c = this.#counts.get(k);
      if (c === undefined) {
        c = { workload, rule: q.rule, key: q.key, windowStart: ws, windowMs: q.windowMs, limit: q.limit, parts: new Map(), near: false, over: false };
        this.#counts.set(k, c);
      } else if (ws > c.windowStart || q.windowMs !== c.windowMs) {
        this.#reset(c, ws, q.windowMs);
      } else if (ws < c.windowStart) {
        continue; // a late event of a window already over: it changes nothing now
      }
      let part = c.parts.get(partition);
      if (part === undefined) c.parts.set(partition, (part = { count: 0, skipBefore: null, dirty: false, written: false }));
      // Replayed after a restore: already in the checkpoint's count.
      if (part.skipBefore !== null && offset < part.skipBefore) continue;
      c.limit = q.limit;
      part.count++;
      part.dirty = true;
      this.counted++;
      const rec = this.#decide(c, k, now, now - r.time < REPLAY_LAG_MS ? r.time : null);
      if (rec) out.push(rec);
    }
    return out;
  }

  /**
   * What to publish for `c` now, if anything. `eventTime`: the time of the live event just counted
   * (or of another instance's count just published), or null (a replayed event, a restore, an old
   * count read back): no fair share then, since its in-flight estimate would be meaningless.
   */
  #decide(c: Count, k: string, now: number, eventTime: number | null): QuotaRecord | null {
    const until = c.windowStart + c.windowMs;
    if (until <= now || c.over) return null;
    const { total, remote } = this.#total(c, k);
    const nearAt = Math.ceil(c.limit * NEAR_FRACTION);
    // Hot before the total reaches "near": other instances see our part up to one checkpoint
    // interval late, so checkpoint early from where that interval's growth would take it there.
    if (total + (total / Math.max(1, now - c.windowStart)) * this.#remoteDelayMs >= nearAt) this.#hot = true;
    const n = this.#sidecarsOf(c.workload, now);
    const base = { workload: c.workload, rule: c.rule, key: c.key, until, windowStart: c.windowStart, limit: c.limit, count: total, sidecars: n, at: now };
    if (total >= c.limit) {
      c.over = true;
      return { v: 1, ...base, state: 'over', share: 0 };
    }
    if (this.#fairShare && !c.near && eventTime !== null && total >= nearAt) {
      c.near = true;
      const elapsed = Math.max(1, eventTime - c.windowStart);
      const lag = Math.max(0, now - eventTime);
      const inFlight = (total / elapsed) * (2 * lag + (remote > 0 ? Math.min(this.#remoteDelayMs, REMOTE_NEAR_MS) : 0));
      return { v: 1, ...base, state: 'near', share: Math.max(0, Math.floor((c.limit - total - inFlight) / n)) };
    }
    return null;
  }

  /**
   * A count published on the counts topic (by any instance; ours come back too), or its end
   * (`record` null), published at `publishedAt` (the record's timestamp). Returns what to publish
   * when it takes a key this instance counts near or over its quota.
   */
  onPublished(id: QuotaCountId, record: QuotaCountRecord | null, now: number, publishedAt?: number): QuotaRecord[] {
    const k = joinKey(id.workload, id.rule, id.key);
    let pub = this.#published.get(k);
    if (record === null) {
      pub?.parts.delete(id.partition);
      if (pub?.parts.size === 0) this.#published.delete(k);
      return [];
    }
    // Kept even when its window has ended (a record read back after a restart): the next sweep
    // writes its tombstone if its partition is ours, or drops it.
    if (!pub) this.#published.set(k, (pub = { workload: id.workload, rule: id.rule, key: id.key, parts: new Map() }));
    pub.parts.set(id.partition, { windowStart: record.windowStart, windowMs: record.windowMs, limit: record.limit, count: record.count, next: BigInt(record.next) });
    if (this.#owned.has(id.partition) || record.windowStart + record.windowMs <= now) return [];
    const c = this.#counts.get(k);
    if (!c || c.windowStart !== record.windowStart || c.windowMs !== record.windowMs) return [];
    // A count just published is live news: it may take the key near its quota (fair shares), not
    // one read back after a restart.
    const live = publishedAt !== undefined && now - publishedAt < REPLAY_LAG_MS ? publishedAt : null;
    const rec = this.#decide(c, k, now, live);
    return rec ? [rec] : [];
  }

  /**
   * Takes over the counts last published for `partitions` (just assigned to this instance): they
   * become live counts, valid at the offset they were published at. Windows that ended are not
   * restored. Returns the "over" records to publish again (keys already over: the previous owner
   * may have stopped before its record went out).
   */
  restore(partitions: Iterable<number>, now: number): QuotaRecord[] {
    const wanted = new Set(partitions);
    const out: QuotaRecord[] = [];
    for (const [k, pub] of this.#published) {
      const { workload, rule, key } = pub;
      for (const [p, x] of pub.parts) {
        if (!wanted.has(p) || x.windowStart + x.windowMs <= now) continue;
        let c = this.#counts.get(k);
        if (c === undefined) {
          c = { workload, rule, key, windowStart: x.windowStart, windowMs: x.windowMs, limit: x.limit, parts: new Map(), near: false, over: false };
          this.#counts.set(k, c);
        } else if (x.windowStart > c.windowStart || x.windowMs !== c.windowMs) {
          this.#reset(c, x.windowStart, x.windowMs);
        } else if (x.windowStart < c.windowStart) {
          continue;
        }
        const live = c.parts.get(p);
        // Events of this partition counted before the restore came after the checkpoint's offset.
        c.parts.set(p, { count: x.count + (live?.count ?? 0), skipBefore: x.next, dirty: live !== undefined && live.count > 0, written: true });
        this.restored++;
        if (this.#total(c, k).total >= Math.ceil(c.limit * NEAR_FRACTION)) c.near = true;
        const rec = this.#decide(c, k, now, null);
        if (rec) out.push(rec);
      }
    }
    return out;
  }

  /**
   * Whether a key near its quota (not over yet) was counted since the last call: the aggregator then
   * checkpoints sooner than its interval, so that other instances, which add up our counts, see the
   * crossing without waiting for the interval.
   */
  takeHot(): boolean {
    const hot = this.#hot;
    this.#hot = false;
    return hot;
  }

  /** Forgets the live counts of partitions handed over to another instance (it restores them). */
  drop(partitions: Iterable<number>): void {
    const gone = new Set(partitions);
    for (const [k, c] of this.#counts) {
      for (const p of gone) c.parts.delete(p);
      if (c.parts.size === 0) this.#counts.delete(k);
    }
  }

  /**
   * The owned partitions' counts changed since the last call, to write to the counts topic, each
   * valid at `next(partition)` (the offset after the last event processed). Marks them clean;
   * `failed` marks them dirty again.
   */
  checkpoint(next: (partition: number) => bigint | undefined): { records: CountCheckpoint[]; failed(): void } {
    const records: CountCheckpoint[] = [];
    const taken: Part[] = [];
    for (const c of this.#counts.values()) {
      for (const [p, part] of c.parts) {
        if (!part.dirty || !this.#owned.has(p)) continue;
        const at = next(p) ?? part.skipBefore;
        if (at === undefined || at === null) continue;
        part.dirty = false;
        part.written = true;
        taken.push(part);
        records.push({ id: { partition: p, workload: c.workload, rule: c.rule, key: c.key }, record: { windowStart: c.windowStart, windowMs: c.windowMs, limit: c.limit, count: part.count, next: at.toString() } });
      }
    }
    return {
      records,
      failed: () => {
        for (const part of taken) part.dirty = true;
      },
    };
  }

  /**
   * Drops the counts of windows that have ended. Returns the published quota entries to end
   * (tombstones on the quota topic) and the owned partitions' count records to end (tombstones
   * on the counts topic).
   */
  sweep(now: number): { quotas: { workload: string; rule: string; key: string }[]; counts: QuotaCountId[] } {
    const quotas: { workload: string; rule: string; key: string }[] = [];
    const counts = new Map<string, QuotaCountId>();
    const end = (id: QuotaCountId) => counts.set(`${id.partition}\u0000${joinKey(id.workload, id.rule, id.key)}`, id);
    for (const [k, c] of this.#counts) {
      if (c.windowStart + c.windowMs > now) continue;
      this.#counts.delete(k);
      if (c.near || c.over) quotas.push({ workload: c.workload, rule: c.rule, key: c.key });
      for (const [p, part] of c.parts) if (part.written && this.#owned.has(p)) end({ partition: p, workload: c.workload, rule: c.rule, key: c.key });
    }
    for (const [k, pub] of this.#published) {
      for (const [p, x] of pub.parts) {
        if (x.windowStart + x.windowMs > now) continue;
        pub.parts.delete(p);
        if (this.#owned.has(p)) end({ partition: p, workload: pub.workload, rule: pub.rule, key: pub.key });
      }
      if (pub.parts.size === 0) this.#published.delete(k);
    }
    return { quotas, counts: [...counts.values()] };
  }

  /** Keys over quota now (metrics). */
  overCount(now: number): number {
    let n = 0;
    for (const c of this.#counts.values()) if (c.over && c.windowStart + c.windowMs > now) n++;
    return n;
  }
}
