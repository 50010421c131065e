/**
 * A bounded map with per-entry expiry, least recently used evicted first.
 * Used for the verified-token and introspection caches: bounded so a flood of
 * distinct tokens cannot grow memory, with expiry so no entry outlives the
 * token it vouches for. Map keeps insertion order, so "touch" = delete + set.
 */
export class ExpiringLru<V> {
  #capacity: number;
  readonly #map = new Map<string, { value: V; expiresAt: number }>();

  constructor(capacity: number) {
    this.#capacity = Math.max(1, capacity);
  }

  get size(): number {
    return this.#map.size;
  }

  /** Changes the bound (a policy reload may change it); evicts the oldest if now over. */
  resize(capacity: number): void {
    this.#capacity = Math.max(1, capacity);
    this.#evict();
  }

  /** The live value for `key`, or undefined (an expired entry is dropped). */
  get(key: string, now: number): V | undefined {
    const e = this.#map.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt <= now) {
      this.#map.delete(key);
      return undefined;
    }
    this.#map.delete(key);
    this.#map.set(key, e);
    return e.value;
  }

  /** Stores until `expiresAt` (epoch ms); an already expired entry is not stored. */
  set(key: string, value: V, expiresAt: number, now: number): void {
    if (expiresAt <= now) return;
    this.#map.delete(key);
    this.#map.set(key, { value, expiresAt });
    this.#evict();
  }

  /** Current keys (tests check that no raw token is ever a key). */
  keys(): IterableIterator<string> {
    return this.#map.keys();
  }

  delete(key: string): void {
    this.#map.delete(key);
  }

  clear(): void {
    this.#map.clear();
  }

  #evict(): void {
    while (this.#map.size > this.#capacity) {
      const oldest = this.#map.keys().next();
      if (oldest.done) return;
      this.#map.delete(oldest.value);
    }
  }
}
