/**
 * A bounded map with per-entry expiry, for the verified-token and
 * introspection caches: bounded so a flood of distinct tokens cannot grow
 * memory, with expiry so no entry outlives the token it vouches for.
 *
 * Eviction is "second chance" (CLOCK), an approximation of least recently
 * used: a hit only sets a flag; when the map is full, the oldest entry is
 * evicted unless it was hit since it was last looked at, in which case it
 * goes to the back once. A true LRU on a Map (delete + set on every hit) was
 * measured to cost time linear in the map size per hit in V8 (deleted slots
 * force rehashes), which is exactly the hot path this cache exists to speed up.
 */
interface Slot<V> {
  readonly value: V;
  readonly expiresAt: number;
  hot: boolean;
}

export class ExpiringLru<V> {
  #capacity: number;
  readonly #map = new Map<string, Slot<V>>();

  constructor(capacity: number) {
    this.#capacity = Math.max(1, capacity);
  }

  get size(): number {
    return this.#map.size;
  }

  /** Changes the bound (a policy reload may change it); evicts if now over. */
  resize(capacity: number): void {
    this.#capacity = Math.max(1, capacity);
    this.#evict(this.#capacity);
  }

  /** The live value for `key`, or undefined (an expired entry is dropped). */
  get(key: string, now: number): V | undefined {
    const e = this.#map.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt <= now) {
      this.#map.delete(key);
      return undefined;
    }
    e.hot = true;
    return e.value;
  }

  /** Stores until `expiresAt` (epoch ms); an already expired entry is not stored. */
  set(key: string, value: V, expiresAt: number, now: number): void {
    if (expiresAt <= now) return;
    this.#map.delete(key);
    // Room first, so the new entry itself is never the one evicted.
    this.#evict(this.#capacity - 1);
    this.#map.set(key, { value, expiresAt, hot: false });
  }

  /** Current keys (tests check that no raw token is ever a key). */
  keys(): IterableIterator<string> {
    return this.#map.keys();
  }

  delete(key: string): void {
    this.#map.delete(key);
  }

  /** Drops every entry whose value matches (rare events only: it walks the whole map). */
  deleteWhere(match: (value: V) => boolean): number {
    let n = 0;
    for (const [key, slot] of this.#map) {
      if (match(slot.value)) {
        this.#map.delete(key);
        n++;
      }
    }
    return n;
  }

  clear(): void {
    this.#map.clear();
  }

  /** Evicts until at most `keep` entries remain. */
  #evict(keep: number): void {
    // Each entry gets at most one second chance per call, so this ends.
    let chances = this.#map.size;
    while (this.#map.size > keep) {
      const oldest = this.#map.entries().next();
      if (oldest.done) return;
      const [key, slot] = oldest.value;
      this.#map.delete(key);
      if (slot.hot && chances-- > 0) {
        slot.hot = false;
        this.#map.set(key, slot);
      }
    }
  }
}
