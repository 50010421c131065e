/**
 * The sink's in-memory buffer: a FIFO of records with a fixed capacity, so
 * write() on the request path is an array store and never grows memory past
 * the limit. Taking from the head is O(batch); the backing array is compacted
 * when the consumed prefix is large.
 */
export class BoundedQueue<T> {
  readonly capacity: number;
  #items: (T | undefined)[] = [];
  #head = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get length(): number {
    return this.#items.length - this.#head;
  }

  /** Appends unless full; false means the caller must count the record as not buffered. */
  push(item: T): boolean {
    if (this.length >= this.capacity) return false;
    this.#items.push(item);
    return true;
  }

  /** Removes and returns up to `n` items from the head, oldest first. */
  take(n: number): T[] {
    const end = Math.min(this.#items.length, this.#head + n);
    const out = this.#items.slice(this.#head, end) as T[];
    for (let i = this.#head; i < end; i++) this.#items[i] = undefined;
    this.#head = end;
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head > 4096 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return out;
  }

  /**
   * Puts items back at the head (a batch that could not be published, when
   * there is no spool). May exceed the capacity by that batch: those records
   * were already accepted and are older than everything queued.
   */
  unshift(items: readonly T[]): void {
    if (items.length === 0) return;
    this.#items = [...items, ...this.#items.slice(this.#head)];
    this.#head = 0;
  }
}
