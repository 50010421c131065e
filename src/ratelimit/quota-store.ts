/**
 * What this sidecar knows of the fleet-wide quotas (rules with scope:
 * global): the keys over quota, or near it, until the end of their window.
 * Filled from the quota topic (quota-feed.ts), read by the rate-limit stage
 * with one Map lookup per global rule and request. Kept across policy
 * reloads (service part "quotas"). Entries end by themselves at `until`:
 * a lookup ignores and drops an ended entry, and a sweep (at most once a
 * second, from set()) drops the ones nobody asks for.
 */
import { servicePart, type Services } from '../pipeline/services.ts';
import { quotaStoreKey, type QuotaRecord } from './quota-record.ts';

export interface QuotaEntry {
  readonly state: 'over' | 'near';
  readonly until: number;
  readonly windowStart: number;
  readonly limit: number;
  /** "near": requests this sidecar may still let through (decremented by the stage). */
  left: number;
}

const SWEEP_MS = 1000;

export class QuotaStore {
  readonly #entries = new Map<string, QuotaEntry>();
  #sweptAt = 0;
  /** Set once a record arrived from the topic, so the stage knows whether global quotas are followed at all. */
  applied = 0;

  get(storeKey: string, now: number): QuotaEntry | undefined {
    const e = this.#entries.get(storeKey);
    if (e === undefined) return undefined;
    if (e.until <= now) {
      this.#entries.delete(storeKey);
      return undefined;
    }
    return e;
  }

  /** Applies a record: "over" replaces anything; "near" never downgrades an "over" of the same window, nor refills a share already being spent. */
  apply(r: QuotaRecord, now: number): void {
    this.applied++;
    if (r.until <= now) return;
    if (now - this.#sweptAt >= SWEEP_MS) this.sweep(now);
    const k = quotaStoreKey(r.workload, r.rule, r.key);
    const cur = this.#entries.get(k);
    if (r.state === 'near' && cur && cur.until === r.until && (cur.state === 'over' || cur.left <= r.share)) return;
    this.#entries.set(k, { state: r.state, until: r.until, windowStart: r.windowStart, limit: r.limit, left: r.share });
  }

  remove(workload: string, rule: string, key: string): void {
    this.#entries.delete(quotaStoreKey(workload, rule, key));
  }

  sweep(now: number): void {
    this.#sweptAt = now;
    for (const [k, e] of this.#entries) if (e.until <= now) this.#entries.delete(k);
  }

  /** Live entries by state (metrics). */
  count(now: number): { over: number; near: number } {
    let over = 0;
    let near = 0;
    for (const e of this.#entries.values()) {
      if (e.until <= now) continue;
      if (e.state === 'over' || e.left <= 0) over++;
      else near++;
    }
    return { over, near };
  }
}

declare module '../pipeline/services.ts' {
  interface ServiceParts {
    quotas: QuotaStore;
  }
}

export function quotaStore(services: Services): QuotaStore {
  return servicePart(services, 'quotas', () => new QuotaStore());
}
