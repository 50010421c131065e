import { describe, expect, it } from 'vitest';
import { BlockListStore } from '../../src/blocklist/store.ts';
import { formatIp, parseIp } from '../../src/http/cidr.ts';

/** A deterministic pseudo-random sequence (xorshift32), so failures reproduce. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('block list store at 100,000 entries', () => {
  it('matches exact IPs, IPv4/IPv6 CIDRs and identities exactly like a linear scan', () => {
    const r = rng(42);
    const store = new BlockListStore({ now: () => 0 });
    const v4nets: [number, number][] = [];
    const v6nets: [string, number][] = [];
    const subjects: string[] = [];
    let n = 0;
    while (n < 100_000) {
      const kind = r();
      if (kind < 0.6) {
        const ip = Math.floor(r() * 2 ** 32);
        if (store.get('ip', formatIp({ v: 4, n: ip }))) continue;
        store.add({ kind: 'ip', value: formatIp({ v: 4, n: ip }), reason: 'r' });
      } else if (kind < 0.8) {
        const bits = 8 + Math.floor(r() * 25);
        const net = ((Math.floor(r() * 2 ** 32) >>> (32 - bits)) << (32 - bits)) >>> 0;
        const text = `${formatIp({ v: 4, n: net })}/${bits}`;
        if (store.get('cidr', text)) continue;
        store.add({ kind: 'cidr', value: text, reason: 'r' });
        v4nets.push([net, bits]);
      } else if (kind < 0.9) {
        const bits = 16 + 4 * Math.floor(r() * 28);
        const hex = Array.from({ length: 32 }, (_, i) => (i * 4 < bits ? Math.floor(r() * 16) : 0).toString(16)).join('');
        const text = `${formatIp({ v: 6, hex })}/${bits}`;
        if (store.get('cidr', text)) continue;
        store.add({ kind: 'cidr', value: text, reason: 'r' });
        v6nets.push([hex, bits]);
      } else {
        store.add({ kind: 'subject', value: `user-${n}`, reason: 'r' });
        subjects.push(`user-${n}`);
      }
      n++;
    }
    expect(store.size()).toBe(100_000);
    const inV4 = (ip: number) => v4nets.some(([net, bits]) => ip >>> (32 - bits) === net >>> (32 - bits));
    const inV6 = (hex: string) => v6nets.some(([net, bits]) => hex.slice(0, bits / 4) === net.slice(0, bits / 4));
    for (let i = 0; i < 2000; i++) {
      const ip = Math.floor(r() * 2 ** 32);
      const text = formatIp({ v: 4, n: ip });
      const want = store.get('ip', text) !== undefined || inV4(ip);
      expect(store.matchIp(parseIp(text)!, 0) !== undefined, text).toBe(want);
    }
    for (const [net] of v6nets.slice(0, 500)) {
      const hex = net.slice(0, 28) + 'abcd';
      expect(store.matchIp(parseIp(formatIp({ v: 6, hex }))!, 0) !== undefined).toBe(inV6(hex));
    }
    for (const s of subjects.slice(-100)) expect(store.matchId('subject', s, 0)?.value).toBe(s);
    expect(store.matchId('subject', 'nobody', 0)).toBeUndefined();
  });

  it('refuses bad entries with a message that says what to fix', () => {
    const store = new BlockListStore();
    expect(() => store.add({ kind: 'ip', value: '10.0.0.0/8', reason: 'x' })).toThrow('ip "10.0.0.0/8" is not an IPv4 or IPv6 address; for a network use cidr');
    expect(() => store.add({ kind: 'spiffeId', value: 'ns/a', reason: 'x' })).toThrow('spiffeId "ns/a" must start with spiffe://');
    expect(() => store.add({ kind: 'subject', value: 'a', reason: '' })).toThrow('a subject entry needs a reason');
    expect(() => store.add({ kind: 'subject', value: 'a', reason: 'x', ttlMs: 0 })).toThrow(/ttlMs must be a positive number/);
  });

  it('stays bounded: adding beyond maxEntries throws instead of growing', () => {
    const store = new BlockListStore({ maxEntries: 3 });
    for (const s of ['a', 'b', 'c']) store.add({ kind: 'subject', value: s, reason: 'x' });
    expect(() => store.add({ kind: 'subject', value: 'd', reason: 'x' })).toThrow(/block list is full \(3 entries\)/);
    // Replacing an entry is not growth.
    expect(store.add({ kind: 'subject', value: 'a', reason: 'again' }).reason).toBe('again');
    expect(store.size()).toBe(3);
  });
});
