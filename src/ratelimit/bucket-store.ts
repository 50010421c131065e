/**
 * Token-bucket state for one rule, bounded in memory however many distinct
 * keys arrive. Two generations of maps: lookups and new buckets go to the
 * current one; a bucket found only in the previous one moves up. The
 * generations rotate when the current one is half the bound, or when
 * `idleMs` (the rule's refill time) has passed, and rotation drops the
 * previous generation.
 *
 * Time-based rotation is lossless: a dropped bucket was untouched for at
 * least idleMs, so it had refilled to full, exactly what a new bucket holds.
 * Size-based rotation (more than half the bound of distinct keys within one
 * refill period: a key-rotation flood) forgets the least recently used keys
 * first; that can only hand a full burst to a key that has been quiet for
 * the longest, never take tokens from an active one.
 */

export interface Bucket {
  /** Tokens left (fractional), as of `at`. */
  tokens: number;
  /** Last refill time, epoch ms. */
  at: number;
}

export class BucketStore {
  #cur = new Map<string, Bucket>();
  #prev = new Map<string, Bucket>();
  #rotatedAt: number;
  readonly #half: number;
  readonly #idleMs: number;

  constructor(maxKeys: number, idleMs: number, now: number) {
    this.#half = Math.max(1, Math.floor(maxKeys / 2));
    this.#idleMs = Math.max(1, idleMs);
    this.#rotatedAt = now;
  }

  get size(): number {
    return this.#cur.size + this.#prev.size;
  }

  get maxKeys(): number {
    return this.#half * 2;
  }

  get(key: string, now: number): Bucket | undefined {
    const since = now - this.#rotatedAt;
    if (since >= this.#idleMs) {
      // Two periods idle: both generations are full buckets; forget them all.
      if (since >= 2 * this.#idleMs) this.#cur = new Map();
      this.#rotate(now);
    }
    const b = this.#cur.get(key);
    if (b !== undefined) return b;
    const old = this.#prev.get(key);
    if (old !== undefined) {
      this.#prev.delete(key);
      this.set(key, old, now);
    }
    return old;
  }

  set(key: string, bucket: Bucket, now: number): void {
    if (this.#cur.size >= this.#half) this.#rotate(now);
    this.#cur.set(key, bucket);
  }

  clear(): void {
    this.#cur = new Map();
    this.#prev = new Map();
  }

  #rotate(now: number): void {
    this.#prev = this.#cur;
    this.#cur = new Map();
    this.#rotatedAt = now;
  }
}
