import { describe, expect, it } from 'vitest';
import { ExpiringLru } from '../../src/authn/lru.ts';

describe('ExpiringLru', () => {
  it('is bounded, evicting the oldest entry that was not used since', () => {
    const l = new ExpiringLru<number>(3);
    for (const k of ['a', 'b', 'c']) l.set(k, 1, 1000, 0);
    expect(l.get('a', 0)).toBe(1); // a gets a second chance
    l.set('d', 1, 1000, 0);
    expect([...l.keys()].sort()).toEqual(['a', 'c', 'd']);
    l.set('e', 1, 1000, 0);
    expect([...l.keys()].sort()).toEqual(['a', 'd', 'e']);
    l.set('f', 1, 1000, 0); // a's chance was used: now it goes
    expect([...l.keys()].sort()).toEqual(['d', 'e', 'f']);
  });

  it('drops the entries a predicate matches (a key left the JWKS)', () => {
    const l = new ExpiringLru<{ key: string }>(10);
    l.set('a', { key: 'k1' }, 1000, 0);
    l.set('b', { key: 'k2' }, 1000, 0);
    l.set('c', { key: 'k1' }, 1000, 0);
    expect(l.deleteWhere((v) => v.key === 'k1')).toBe(2);
    expect([...l.keys()]).toEqual(['b']);
  });

  it('ends eviction even when every entry is hot', () => {
    const l = new ExpiringLru<number>(2);
    l.set('a', 1, 1000, 0);
    l.set('b', 1, 1000, 0);
    l.get('a', 0);
    l.get('b', 0);
    l.set('c', 1, 1000, 0);
    expect(l.size).toBe(2);
    expect(l.get('c', 0)).toBe(1);
  });

  it('drops entries at their expiry and never stores an expired one', () => {
    const l = new ExpiringLru<string>(10);
    l.set('a', 'x', 100, 0);
    expect(l.get('a', 99)).toBe('x');
    expect(l.get('a', 100)).toBeUndefined();
    expect(l.size).toBe(0);
    l.set('b', 'y', 50, 50);
    expect(l.size).toBe(0);
  });

  it('shrinks on resize', () => {
    const l = new ExpiringLru<number>(10);
    for (let i = 0; i < 10; i++) l.set(`k${i}`, i, 1000, 0);
    l.resize(4);
    expect(l.size).toBe(4);
    expect([...l.keys()]).toEqual(['k6', 'k7', 'k8', 'k9']);
  });
});
