import { describe, expect, it } from 'vitest';
import { backoffMs } from '../../src/util/backoff.ts';

describe('backoffMs', () => {
  it('doubles from the first wait and stops at the most', () => {
    expect([0, 1, 2, 3, 4, 5, 6].map((a) => backoffMs(a, 500, 10_000))).toEqual([500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
    expect([0, 1, 2, 3, 4].map((a) => backoffMs(a, 100, 1000))).toEqual([100, 200, 400, 800, 1000]);
  });

  it('stays at the most however many attempts', () => {
    expect(backoffMs(10_000, 250, 10_000)).toBe(10_000);
  });
});
