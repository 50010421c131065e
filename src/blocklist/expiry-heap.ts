/** A binary min-heap of entries by expiry time, so expired entries are found without scanning. */
export class ExpiryHeap<T extends { readonly expiresAt: number | null }> {
  readonly #a: T[] = [];

  get size(): number {
    return this.#a.length;
  }

  push(x: T): void {
    const a = this.#a;
    a.push(x);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((a[p] as T).expiresAt! <= x.expiresAt!) break;
      a[i] = a[p] as T;
      i = p;
    }
    a[i] = x;
  }

  peek(): T | undefined {
    return this.#a[0];
  }

  pop(): T | undefined {
    const a = this.#a;
    const top = a[0];
    const last = a.pop();
    if (a.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= a.length) break;
      const r = l + 1;
      const c = r < a.length && (a[r] as T).expiresAt! < (a[l] as T).expiresAt! ? r : l;
      if ((a[c] as T).expiresAt! >= last.expiresAt!) break;
      a[i] = a[c] as T;
      i = c;
    }
    a[i] = last;
    return top;
  }

  clear(): void {
    this.#a.length = 0;
  }
}
