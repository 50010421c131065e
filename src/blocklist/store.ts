/**
 * The programmatic block list: entries added at run time by the detector
 * feedback loop or an operator, kept across policy reloads (service part
 * "blocklist"). Entries live in a compact index (block-index.ts: typed-array
 * columns, no object per entry). They expire by themselves: lookups ignore
 * expired ones at once, and a timer (unref'd) removes them and tells
 * listeners; a list or a count is always current.
 *
 *   const store = blockListStore(services);
 *   store.add({ kind: 'ip', value: '203.0.113.7', reason: 'credential stuffing', source: 'detector', ttlMs: 600_000 });
 *   const off = store.onChange((c) => ...);
 */
import type { Logger } from 'pino';
import type { ParsedIp } from '../http/cidr.ts';
import { servicePart, type Services } from '../pipeline/services.ts';
import { BlockIndex } from './block-index.ts';
import { BlockEntryError, isLive, makeEntry, type BlockEntry, type BlockEntryInput, type BlockKind, type BlockSource, type IdentityBlockKind } from './entry.ts';

export interface BlockChange {
  readonly type: 'added' | 'removed' | 'expired';
  readonly entry: BlockEntry;
  /** For "added": the entry it replaced under the same key, if any. */
  readonly replaced?: BlockEntry;
}

export interface BlockListStoreOptions {
  readonly now?: () => number;
  readonly logger?: Logger;
  /** Most entries held; add() beyond it throws. Default 1,000,000. */
  readonly maxEntries?: number;
}

/** Longest a timer may be set for (setTimeout's 32-bit limit). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/**
 * Least time between two expiry scans started by the timer or by add(), ms.
 * A scan reads the whole expiry column (~0.1 ms per 100,000 entries); entries
 * expiring at many different times are thus removed in batches, at most one
 * second after their time. Lookups never match an expired entry meanwhile,
 * and size() and list() always scan when something is due, so they are exact.
 */
const SCAN_INTERVAL_MS = 1000;

export class BlockListStore {
  readonly #now: () => number;
  readonly #logger: Logger | undefined;
  readonly #max: number;
  readonly #index = new BlockIndex();
  #lastScan = -Infinity;
  readonly #listeners = new Set<(c: BlockChange) => void>();
  #timer: NodeJS.Timeout | null = null;
  #timerAt = Infinity;

  constructor(options: BlockListStoreOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#logger = options.logger;
    this.#max = options.maxEntries ?? 1_000_000;
  }

  /** Adds (or replaces: same kind and value) an entry. Throws BlockEntryError on bad input or when full. */
  add(input: BlockEntryInput): BlockEntry {
    const now = this.#now();
    if (now - this.#lastScan >= SCAN_INTERVAL_MS) this.purge(now);
    const entry = makeEntry(input, now);
    if (entry.expiresAt !== null && entry.expiresAt <= now) throw new BlockEntryError(`entry ${entry.kind} ${entry.value} is already expired`);
    const replaced = this.#index.set(entry);
    if (!replaced && this.#index.size > this.#max) {
      this.#index.delete(entry);
      throw new BlockEntryError(`block list is full (${this.#max} entries); remove entries or give them an expiry`);
    }
    if (entry.expiresAt !== null) this.#schedule(now);
    if (this.#listeners.size > 0) this.#emit(replaced ? { type: 'added', entry, replaced } : { type: 'added', entry });
    return entry;
  }

  /** Removes the entry for this kind and value (written in any form); false if there was none. */
  remove(kind: BlockKind, value: string): boolean {
    const e = this.get(kind, value);
    if (!e) return false;
    this.#index.delete(e);
    this.#emit({ type: 'removed', entry: e });
    return true;
  }

  /** The live entry for this kind and value, if any. */
  get(kind: BlockKind, value: string): BlockEntry | undefined {
    let key: BlockEntry;
    try {
      key = makeEntry({ kind, value, reason: '-' }, 0);
    } catch {
      return undefined;
    }
    const e = this.#index.get(key);
    return e && isLive(e, this.#now()) ? e : undefined;
  }

  list(filter: { source?: BlockSource; kind?: BlockKind } = {}): BlockEntry[] {
    this.purge();
    const out: BlockEntry[] = [];
    for (const e of this.#index.entries()) if ((!filter.source || e.source === filter.source) && (!filter.kind || e.kind === filter.kind)) out.push(e);
    return out;
  }

  size(): number {
    this.purge();
    return this.#index.size;
  }

  /** Calls `listener` on every add, remove and expiry; returns the function that unsubscribes. */
  onChange(listener: (change: BlockChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Removes every entry (tells listeners about each). */
  clear(): void {
    for (const e of this.list()) this.remove(e.kind, e.value);
  }

  /** Drops entries whose expiry has passed (telling listeners). Called by the timer, add(), list() and size(). */
  purge(now = this.#now()): number {
    if (now < this.#index.nextExpiry) return 0;
    this.#lastScan = now;
    const gone = this.#index.takeExpired(now);
    for (const e of gone) this.#emit({ type: 'expired', entry: e });
    this.#schedule(now);
    return gone.length;
  }

  /** Stops the expiry timer (entries still expire on lookup). */
  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerAt = Infinity;
  }

  // ---- for the stage (hot path: no purge, expired entries just do not match) ----
  get isEmpty(): boolean {
    return this.#index.size === 0;
  }
  matchIp(ip: ParsedIp, now: number): BlockEntry | undefined {
    return this.#index.matchIp(ip, now);
  }
  matchId(kind: IdentityBlockKind, value: string, now: number): BlockEntry | undefined {
    return this.#index.matchId(kind, value, now);
  }
  hasIdentityEntries(): boolean {
    return this.#index.hasIdentityEntries();
  }
  /** Changes so far (BlockIndex.version): unchanged, a lookup that found nothing still finds nothing. */
  get version(): number {
    return this.#index.version;
  }

  /** Sets the timer for the next expiry (not sooner than SCAN_INTERVAL_MS after the last scan). */
  #schedule(now: number): void {
    const due = this.#index.nextExpiry;
    const at = due === Infinity ? Infinity : Math.max(due, this.#lastScan + SCAN_INTERVAL_MS);
    if (this.#timer && at === this.#timerAt) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerAt = Infinity;
    if (at === Infinity) return;
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#timerAt = Infinity;
      this.purge();
      this.#schedule(this.#now());
    }, Math.min(MAX_TIMER_MS, Math.max(0, at - now) + 1));
    this.#timer.unref();
  }

  #emit(change: BlockChange): void {
    for (const l of this.#listeners) {
      try {
        l(change);
      } catch (err) {
        this.#logger?.error({ err }, 'block list listener failed');
      }
    }
  }
}

declare module '../pipeline/services.ts' {
  interface ServiceParts {
    blocklist: BlockListStore;
  }
}

/** The process's block list store (created once; survives policy reloads). */
export function blockListStore(services: Services): BlockListStore {
  return servicePart(services, 'blocklist', () => new BlockListStore({ now: services.now, logger: services.logger }));
}
