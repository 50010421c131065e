import { describe, expect, it } from 'vitest';
import { BucketStore } from '../../src/ratelimit/bucket-store.ts';

describe('bucket store', () => {
  it('stays within its bound under millions of distinct keys', () => {
    const store = new BucketStore(10_000, 60_000, 0);
    let max = 0;
    for (let i = 0; i < 2_000_000; i++) {
      const k = `k${i}`;
      if (store.get(k, 0) === undefined) store.set(k, { tokens: 1, at: 0 }, 0);
      if ((i & 1023) === 0) max = Math.max(max, store.size);
    }
    expect(max).toBeLessThanOrEqual(10_000);
    expect(store.size).toBeLessThanOrEqual(10_000);
  });

  it('keeps an active bucket across a key flood longer than its generation', () => {
    const store = new BucketStore(1000, 60_000, 0);
    store.set('victim', { tokens: 0, at: 0 }, 0);
    for (let i = 0; i < 10_000; i++) {
      store.set(`flood${i}`, { tokens: 1, at: 0 }, 0);
      // The victim keeps sending: touching it moves it to the current generation.
      if (i % 200 === 0) expect(store.get('victim', 0)?.tokens).toBe(0);
    }
  });

  it('evicts buckets idle for a refill period (they would be full anyway)', () => {
    const store = new BucketStore(1000, 1000, 0);
    store.set('a', { tokens: 0, at: 0 }, 0);
    store.set('b', { tokens: 0, at: 0 }, 0);
    expect(store.get('a', 999)).toBeDefined();
    // The generation rotates at 1500 (a moves up); b, untouched since 0, goes at the next rotation.
    expect(store.get('a', 1500)).toBeDefined();
    expect(store.get('b', 2600)).toBeUndefined();
    expect(store.get('a', 5000)).toBeUndefined();
    expect(store.size).toBe(0);
  });
});
