import { describe, expect, it } from 'vitest';
import { BlockIndex } from '../../src/blocklist/block-index.ts';
import { makeEntry, type BlockEntry, type BlockEntryInput, type IdentityBlockKind } from '../../src/blocklist/entry.ts';
import { BlockListStore, type BlockChange } from '../../src/blocklist/store.ts';
import { formatIp, parseIp, type ParsedIp } from '../../src/http/cidr.ts';

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

const entry = (input: BlockEntryInput, now = 0) => makeEntry(input, now);

/** Does network `e` (an ip or cidr entry) contain `ip`? Written the slow, obvious way: compare bit strings. */
function contains(e: BlockEntry, ip: ParsedIp): boolean {
  const c = e.cidr!;
  if (c.ip.v !== ip.v) return false;
  return bitsOf(c.ip).slice(0, c.bits) === bitsOf(ip).slice(0, c.bits);
}
const bitStrings = new Map<ParsedIp, string>();
function bitsOf(p: ParsedIp): string {
  let b = bitStrings.get(p);
  if (b === undefined) {
    b = p.v === 4 ? p.n.toString(2).padStart(32, '0') : [...p.hex].map((h) => parseInt(h, 16).toString(2).padStart(4, '0')).join('');
    bitStrings.set(p, b);
  }
  return b;
}

/** What matchIp must return, by a linear scan: the longest live prefix, unless dry-run and an enforced one exists. */
function scanIp(entries: Iterable<BlockEntry>, ip: ParsedIp, now: number): BlockEntry | undefined {
  const live = [...entries].filter((e) => e.cidr && (e.expiresAt === null || e.expiresAt > now) && contains(e, ip)).sort((a, b) => b.cidr!.bits - a.cidr!.bits);
  return live.find((e) => !e.audit) ?? live[0];
}

describe('compact block index', () => {
  it('finds the same entry as a linear scan, through random adds, replacements, removals and expiries (v4 and v6, every prefix length)', () => {
    const r = rng(7);
    const idx = new BlockIndex();
    const model = new Map<string, BlockEntry>();
    const key = (e: BlockEntry) => (e.cidr ? `net:${e.cidr.text}` : `${e.kind}:${e.value}`);
    const randV4 = () => Math.floor(r() * 2 ** 32) & 0xff0000ff; // few distinct addresses: many overlaps
    const randV6 = () => formatIp({ v: 6, hex: `2001db8${Math.floor(r() * 4).toString(16)}${'0'.repeat(16)}${Math.floor(r() * 2 ** 32).toString(16).padStart(8, '0')}`.slice(0, 32).padEnd(32, '0') });
    const netOf = (text: string, bits: number): string => {
      const ip = parseIp(text)!;
      if (ip.v === 4) return `${formatIp({ v: 4, n: bits === 0 ? 0 : ((ip.n >>> (32 - bits)) << (32 - bits)) >>> 0 })}/${bits}`;
      const bin = [...ip.hex].map((h) => parseInt(h, 16).toString(2).padStart(4, '0')).join('').slice(0, bits).padEnd(128, '0');
      const hex = Array.from({ length: 32 }, (_, i) => parseInt(bin.slice(i * 4, i * 4 + 4), 2).toString(16)).join('');
      return `${formatIp({ v: 6, hex })}/${bits}`;
    };
    let now = 1000;
    let hits = 0;
    let dryRunHits = 0;
    for (let step = 0; step < 4000; step++) {
      const op = r();
      if (op < 0.55) {
        const v6 = r() < 0.4;
        const addr = v6 ? randV6() : formatIp({ v: 4, n: randV4() >>> 0 });
        const exact = r() < 0.3;
        const bits = v6 ? Math.floor(r() * 129) : Math.floor(r() * 33);
        const input: BlockEntryInput = exact
          ? { kind: 'ip', value: addr, reason: `r${step % 5}`, rule: `rule-${step % 3}`, audit: r() < 0.3, ...(r() < 0.3 ? { expiresAt: now + 1 + Math.floor(r() * 50) } : {}) }
          : { kind: 'cidr', value: netOf(addr, bits), reason: `r${step % 5}`, rule: `rule-${step % 3}`, audit: r() < 0.3, ...(r() < 0.3 ? { expiresAt: now + 1 + Math.floor(r() * 50) } : {}) };
        const e = entry(input, now);
        const replaced = idx.set(e);
        expect(replaced?.value).toBe(model.get(key(e))?.value);
        model.set(key(e), e);
      } else if (op < 0.65) {
        const kind = (['subject', 'spiffeId', 'clientId', 'tokenId'] as const)[Math.floor(r() * 4)]!;
        const value = `${kind === 'spiffeId' ? 'spiffe://td/' : ''}id-${Math.floor(r() * 50)}`;
        const e = entry({ kind, value, reason: 'x', audit: r() < 0.2 }, now);
        idx.set(e);
        model.set(key(e), e);
      } else if (op < 0.8 && model.size > 0) {
        const victims = [...model.values()];
        const v = victims[Math.floor(r() * victims.length)]!;
        expect(idx.delete(v)?.value).toBe(v.value);
        model.delete(key(v));
      } else if (op < 0.85) {
        now += Math.floor(r() * 20);
      } else {
        const v6 = r() < 0.4;
        const ip = parseIp(v6 ? randV6() : formatIp({ v: 4, n: randV4() >>> 0 }))!;
        const got = idx.matchIp(ip, now);
        const want = scanIp(model.values(), ip, now);
        expect(got && `${got.cidr!.text} ${got.audit}`, formatIp(ip)).toBe(want && `${want.cidr!.text} ${want.audit}`);
        if (want) hits++;
        if (want?.audit) dryRunHits++;
        if (want) expect(got).toMatchObject({ kind: want.kind, value: want.value, reason: want.reason, rule: want.rule, expiresAt: want.expiresAt, source: want.source });
      }
      expect(idx.size).toBe(model.size);
    }
    // The walk did test matches, dry-run ones too, not only misses.
    expect(hits).toBeGreaterThan(100);
    expect(dryRunHits).toBeGreaterThan(10);
    // Every identity entry answers for itself, and only for its kind.
    for (const e of model.values()) {
      if (e.cidr) continue;
      const kind = e.kind as IdentityBlockKind;
      expect(idx.matchId(kind, e.value, now)).toMatchObject({ kind, value: e.value, audit: e.audit });
      const other = kind === 'subject' ? 'clientId' : 'subject';
      if (!model.has(`${other}:${e.value}`)) expect(idx.matchId(other, e.value, now)).toBeUndefined();
    }
    // What the index lists is what it holds, each entry as makeEntry made it.
    const listed = [...idx.entries()];
    expect(listed.length).toBe(model.size);
    for (const e of listed) expect(e).toEqual(model.get(key(e)));
  });

  it('longest prefix wins; an enforced entry wins over a dry-run one at a longer prefix; an expired one is skipped', () => {
    const idx = new BlockIndex();
    idx.set(entry({ kind: 'cidr', value: '10.0.0.0/8', reason: 'wide', rule: 'wide' }));
    idx.set(entry({ kind: 'cidr', value: '10.1.0.0/16', reason: 'narrow, dry-run', rule: 'narrow', audit: true }));
    idx.set(entry({ kind: 'ip', value: '10.1.2.3', reason: 'host', rule: 'host', expiresAt: 50 }));
    const at = (ip: string, now: number) => idx.matchIp(parseIp(ip)!, now)?.rule;
    expect(at('10.1.2.3', 0)).toBe('host');
    expect(at('10.1.2.3', 50)).toBe('wide'); // host expired; narrow is dry-run, wide is enforced
    expect(at('10.2.0.1', 0)).toBe('wide');
    expect(at('11.0.0.1', 0)).toBeUndefined();
    idx.delete(entry({ kind: 'cidr', value: '10.0.0.0/8', reason: '-' }));
    expect(at('10.1.9.9', 0)).toBe('narrow');
    expect(idx.matchIp(parseIp('10.1.9.9')!, 0)?.audit).toBe(true);
    // An IPv4-mapped IPv6 client is the IPv4 client.
    expect(at('::ffff:10.1.2.3', 0)).toBe('host');
    // ip and cidr /32 are one key: the later replaces the earlier.
    expect(idx.set(entry({ kind: 'cidr', value: '10.1.2.3/32', reason: 'again', rule: 'again' }))?.rule).toBe('host');
    expect(at('10.1.2.3', 100)).toBe('again');
  });

  it('IPv6: prefixes of any length, /0 and /128, written in any form', () => {
    const idx = new BlockIndex();
    idx.set(entry({ kind: 'cidr', value: '2001:db8:abcd:0010::/61', reason: 'odd length', rule: 'p61' }));
    idx.set(entry({ kind: 'ip', value: '2001:DB8:0:0:0:0:0:1', reason: 'host', rule: 'host' }));
    idx.set(entry({ kind: 'cidr', value: '::/0', reason: 'everything, dry-run', rule: 'all', audit: true }));
    const at = (ip: string) => idx.matchIp(parseIp(ip)!, 0)?.rule;
    expect(at('2001:db8::1')).toBe('host');
    expect(at('2001:db8:abcd:17::5')).toBe('p61'); // 0x10..0x17 share the first 61 bits
    expect(at('2001:db8:abcd:18::5')).toBe('all');
    expect(at('192.0.2.1')).toBeUndefined(); // ::/0 is IPv6 only
    expect(idx.get(entry({ kind: 'ip', value: '2001:db8::1', reason: '-' }))).toMatchObject({ value: '2001:db8::1', cidr: { text: '2001:db8::1/128', bits: 128 } });
    expect([...idx.entries()].map((e) => e.value).sort()).toEqual(['2001:db8::1', '2001:db8:abcd:10::/61', '::/0']);
  });

  it('keeps each entry its own reason and rule when many share them and some go (shared strings are counted)', () => {
    const idx = new BlockIndex();
    for (let i = 0; i < 300; i++) idx.set(entry({ kind: 'subject', value: `u${i}`, reason: `reason ${i % 3}`, rule: i % 2 ? 'odd' : 'even' }));
    for (let i = 0; i < 300; i += 3) idx.delete(entry({ kind: 'subject', value: `u${i}`, reason: '-' }));
    for (let i = 300; i < 400; i++) idx.set(entry({ kind: 'subject', value: `u${i}`, reason: `new ${i}`, rule: `rule ${i}` }));
    for (let i = 0; i < 400; i++) {
      const got = idx.matchId('subject', `u${i}`, 0);
      if (i < 300 && i % 3 === 0) expect(got).toBeUndefined();
      else if (i < 300) expect(got).toMatchObject({ reason: `reason ${i % 3}`, rule: i % 2 ? 'odd' : 'even' });
      else expect(got).toMatchObject({ reason: `new ${i}`, rule: `rule ${i}` });
    }
    expect(idx.size).toBe(300);
    // A pair released and its id reused by another: the next entry with the first pair still gets its own.
    const solo = new BlockIndex();
    solo.set(entry({ kind: 'subject', value: 'a', reason: 'first', rule: 'r1' }));
    solo.delete(entry({ kind: 'subject', value: 'a', reason: '-' }));
    solo.set(entry({ kind: 'subject', value: 'b', reason: 'second', rule: 'r2' }));
    solo.set(entry({ kind: 'subject', value: 'c', reason: 'first', rule: 'r1' }));
    expect(solo.matchId('subject', 'b', 0)).toMatchObject({ reason: 'second', rule: 'r2' });
    expect(solo.matchId('subject', 'c', 0)).toMatchObject({ reason: 'first', rule: 'r1' });
  });
});

describe('block list store expiry with reused slots', () => {
  it('expires each entry at its own time, also when the key was replaced or its slot reused', () => {
    let now = 1000;
    const store = new BlockListStore({ now: () => now });
    const changes: string[] = [];
    store.onChange((c: BlockChange) => changes.push(`${c.type} ${c.entry.value}${c.entry.expiresAt ? `@${c.entry.expiresAt}` : ''}`));
    store.add({ kind: 'ip', value: '192.0.2.1', reason: 'a', expiresAt: 1100 });
    store.add({ kind: 'ip', value: '192.0.2.1', reason: 'a, longer', expiresAt: 1500 }); // replaced: the 1100 pair is stale
    store.add({ kind: 'subject', value: 'x', reason: 'b', expiresAt: 1200 });
    store.remove('subject', 'x');
    store.add({ kind: 'tokenId', value: 't1', reason: 'c', expiresAt: 1300 }); // reuses x's slot: x's 1200 pair is stale
    store.add({ kind: 'clientId', value: 'forever', reason: 'd' });
    now = 1250;
    expect(store.size()).toBe(3);
    now = 1300;
    expect(store.size()).toBe(2);
    expect(store.get('ip', '192.0.2.1')?.reason).toBe('a, longer');
    now = 1500;
    expect(store.list().map((e) => e.value)).toEqual(['forever']);
    expect(changes).toEqual(['added 192.0.2.1@1100', 'added 192.0.2.1@1500', 'added x@1200', 'removed x@1200', 'added t1@1300', 'added forever', 'expired t1@1300', 'expired 192.0.2.1@1500']);
    store.close();
  });
});
