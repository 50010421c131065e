import { describe, expect, it } from 'vitest';
import { requestId, uuidv7 } from '../../src/util/ids.ts';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('ids', () => {
  it('uuidv7: RFC 9562 layout, the 48-bit millisecond time first, so ids sort by time', () => {
    for (const ms of [0, 1, 0xfff, 0x1000000, 1_765_000_000_123, 2 ** 48 - 1]) {
      const id = uuidv7(ms);
      expect(id).toMatch(UUID_V7);
      expect(id.replace(/-/g, '').slice(0, 12)).toBe(ms.toString(16).padStart(12, '0'));
    }
    const ids = [1_765_000_000_000, 1_765_000_000_001, 1_765_000_065_536, 1_765_016_777_216].map((ms) => uuidv7(ms));
    expect([...ids].sort()).toEqual(ids);
  });

  it('uuidv7 and requestId: random parts that do not repeat', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) seen.add(uuidv7(1_765_000_000_000));
    expect(seen.size).toBe(20_000);
    const rids = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const r = requestId();
      expect(r).toMatch(/^[0-9a-f]{16}$/);
      rids.add(r);
    }
    expect(rids.size).toBe(20_000);
  });

  it('uuidv7: the variant digit takes all four values (its two random bits are used)', () => {
    const variants = new Set<string>();
    for (let i = 0; i < 2000; i++) variants.add(uuidv7().charAt(19));
    expect([...variants].sort()).toEqual(['8', '9', 'a', 'b']);
  });
});
