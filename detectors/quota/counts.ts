/**
 * The quota aggregator's counting, with no I/O: windowed counts per
 * (workload, rule, key) from the decisions' `quotas` facts, and what to
 * publish when a key nears or reaches its quota. Windows are fixed and
 * aligned to the epoch, so every sidecar and the aggregator agree on where a
 * window starts without talking to each other.
 *
 * "near": once a key has used NEAR_FRACTION of its quota, each sidecar gets
 * a fair share of what is left, less what is estimated to be in flight (the
 * key's rate over the window so far, times twice the stream's lag: requests
 * already let through but not yet counted, and those let through while the
 * record travels). Sidecars then stop by themselves at their share, so the
 * overshoot no longer depends on the time an "over" record takes to reach
 * them.
 */
import type { DecisionRecord } from '../../src/decision/record.ts';
import type { QuotaRecord } from '../../src/ratelimit/quota-record.ts';

export const NEAR_FRACTION = 0.9;
/** A sidecar not seen for this long no longer counts in the fair share, ms. */
const SIDECAR_SEEN_MS = 60_000;
/**
 * An event older than this when counted is being replayed (after a restart or a rebalance): it
 * still counts, but gives no fair share, whose in-flight estimate would be meaningless then.
 */
const REPLAY_LAG_MS = 5000;

interface Count {
  readonly workload: string;
  readonly rule: string;
  readonly key: string;
  windowStart: number;
  windowMs: number;
  limit: number;
  count: number;
  near: boolean;
  over: boolean;
}

export interface QuotaCountsOptions {
  /** Publish "near" records with fair shares (default true); false: "over" only. */
  readonly fairShare?: boolean;
}

export class QuotaCounts {
  readonly #counts = new Map<string, Count>();
  /** workload -> sidecar ("ip:port" of its listener) -> last seen, epoch ms. */
  readonly #sidecars = new Map<string, Map<string, number>>();
  readonly #fairShare: boolean;
  counted = 0;

  constructor(o: QuotaCountsOptions = {}) {
    this.#fairShare = o.fairShare ?? true;
  }

  /** Forgets every count (before a replay rebuilds them). */
  clear(): void {
    this.#counts.clear();
    this.#sidecars.clear();
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

  /** Counts one decision; returns the records to publish (none for most). `now`: the aggregator's clock. */
  add(r: DecisionRecord, now: number): QuotaRecord[] {
    const charges = r.quotas;
    if (!charges || charges.length === 0) return [];
    const workload = r.policy?.name ?? '';
    let seen = this.#sidecars.get(workload);
    if (!seen) this.#sidecars.set(workload, (seen = new Map()));
    seen.set(`${r.server.ip}:${r.server.port}`, r.time);
    const out: QuotaRecord[] = [];
    for (const q of charges) {
      const ws = Math.floor(r.time / q.windowMs) * q.windowMs;
      const k = `${workload}\u0000${q.rule}\u0000${q.key}`;
      let c = this.#counts.get(k);
      if (c === undefined) {
        c = { workload, rule: q.rule, key: q.key, windowStart: ws, windowMs: q.windowMs, limit: q.limit, count: 0, near: false, over: false };
        this.#counts.set(k, c);
      } else if (ws > c.windowStart || q.windowMs !== c.windowMs) {
        Object.assign(c, { windowStart: ws, windowMs: q.windowMs, count: 0, near: false, over: false });
      } else if (ws < c.windowStart) {
        continue; // a late event of a window already over: it changes nothing now
      }
      c.limit = q.limit;
      c.count++;
      this.counted++;
      const until = c.windowStart + c.windowMs;
      if (until <= now) continue;
      const n = this.#sidecarsOf(workload, r.time);
      const base = { workload, rule: q.rule, key: q.key, until, windowStart: c.windowStart, limit: c.limit, count: c.count, sidecars: n, at: now };
      if (!c.over && c.count >= c.limit) {
        c.over = true;
        out.push({ v: 1, ...base, state: 'over', share: 0 });
      } else if (this.#fairShare && !c.near && !c.over && c.count >= Math.ceil(c.limit * NEAR_FRACTION) && now - r.time < REPLAY_LAG_MS) {
        c.near = true;
        const elapsed = Math.max(1, r.time - c.windowStart);
        const lag = Math.max(0, now - r.time);
        const inFlight = (c.count / elapsed) * 2 * lag;
        out.push({ v: 1, ...base, state: 'near', share: Math.max(0, Math.floor((c.limit - c.count - inFlight) / n)) });
      }
    }
    return out;
  }

  /** Drops the counts of windows that have ended; returns the published entries to end (tombstones). */
  sweep(now: number): { workload: string; rule: string; key: string }[] {
    const ended: { workload: string; rule: string; key: string }[] = [];
    for (const [k, c] of this.#counts) {
      if (c.windowStart + c.windowMs > now) continue;
      this.#counts.delete(k);
      if (c.near || c.over) ended.push({ workload: c.workload, rule: c.rule, key: c.key });
    }
    return ended;
  }

  /** Keys over quota now (metrics). */
  overCount(now: number): number {
    let n = 0;
    for (const c of this.#counts.values()) if (c.over && c.windowStart + c.windowMs > now) n++;
    return n;
  }
}
