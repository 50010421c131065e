/**
 * The lookup structure behind the block list (the policy's static entries and
 * the run-time store), laid out for a sidecar's memory: an entry is a slot in
 * a few typed-array columns, not an object. A slot holds the kind, source and
 * audit flag (one byte), the prefix length (one byte), the expiry and the
 * time added (two float64), the reason and rule as ids into a shared string
 * pool (the same few reasons and rules repeat across thousands of entries),
 * and its key: an IPv4 address inline, an IPv6 address as four 32-bit words
 * in an arena, an identity as its string. Three open-addressing hash tables
 * (IPv4 prefixes, IPv6 prefixes, identities) map keys to slots, each slot
 * number stored in an Int32Array. About 40-90 bytes an entry depending on
 * the kind (bench/blocklist.ts prints them), against ~250-590 for the former
 * objects-in-maps layout.
 *
 * Lookups: an identity is one probe; a client address is one probe per
 * prefix length in use (longest first), so a 100,000-entry list costs about
 * what a 10-entry one does. A BlockEntry object is made only when a lookup
 * hits (then kept in a small cache: a blocked client tends to come back),
 * for list() and for change events. Expired entries never match; the store
 * removes them for good.
 */
import { formatIp, type Cidr, type ParsedIp } from '../http/cidr.ts';
import { BLOCK_KINDS, type BlockEntry, type BlockKind, type BlockSource, type IdentityBlockKind } from './entry.ts';

/** Of two matches, an enforced one wins over a dry-run one. */
export function stronger(a: BlockEntry | undefined, b: BlockEntry | undefined): BlockEntry | undefined {
  if (a && !a.audit) return a;
  if (b && !b.audit) return b;
  return a ?? b;
}

const SOURCES: readonly BlockSource[] = ['policy', 'detector', 'manual'];
// meta byte: kind index (bits 0-2), source index (bits 3-4), dry-run (bit 5), slot in use (bit 6), IPv6 key (bit 7).
const AUDIT = 1 << 5;
const USED = 1 << 6;
const V6 = 1 << 7;

const KIND_INDEX: Readonly<Record<BlockKind, number>> = { ip: 0, cidr: 1, subject: 2, spiffeId: 3, clientId: 4, tokenId: 5 };
function kindIndex(k: BlockKind): number {
  return KIND_INDEX[k];
}

/**
 * (reason, rule) pairs, stored once and counted: thousands of entries share
 * the same few (a policy's "scanner" entries, a detector rule's blocks), so
 * an entry holds one 32-bit id; a pair goes when its last entry does.
 */
class AttrPool {
  readonly #ids = new Map<string, number>();
  readonly #reasons: (string | undefined)[] = [];
  readonly #rules: (string | undefined)[] = [];
  #refs = new Uint32Array(16);
  readonly #free: number[] = [];

  /** The pair interned last: a bulk load repeats it entry after entry, and then builds no key. */
  #lastReason = '';
  #lastRule = '';
  #lastId = -1;

  intern(reason: string, rule: string): number {
    const last = this.#lastId;
    if (last >= 0 && reason === this.#lastReason && rule === this.#lastRule && this.#refs[last]! > 0) {
      this.#refs[last]!++;
      return last;
    }
    const key = `${rule}\u0000${reason}`;
    let id = this.#ids.get(key);
    if (id === undefined) {
      id = this.#free.pop() ?? this.#reasons.length;
      if (id >= this.#refs.length) {
        const r = new Uint32Array(this.#refs.length * 2);
        r.set(this.#refs);
        this.#refs = r;
      }
      this.#reasons[id] = reason;
      this.#rules[id] = rule;
      this.#ids.set(key, id);
    }
    this.#refs[id]!++;
    this.#lastReason = reason;
    this.#lastRule = rule;
    this.#lastId = id;
    return id;
  }

  release(id: number): void {
    if (--this.#refs[id]! > 0) return;
    // The id may be reused for another pair: the shortcut must not hand it out for this one.
    if (id === this.#lastId) this.#lastId = -1;
    this.#ids.delete(`${this.#rules[id]}\u0000${this.#reasons[id]}`);
    this.#reasons[id] = undefined;
    this.#rules[id] = undefined;
    this.#free.push(id);
  }

  reason(id: number): string {
    return this.#reasons[id] as string;
  }

  rule(id: number): string {
    return this.#rules[id] as string;
  }
}

/** A 32-bit integer hash with good spread in the low bits (the tables index by them). */
function mix(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

function hashV4(addr: number, bits: number): number {
  return mix(addr ^ Math.imul(bits + 1, 0x9e3779b1));
}

function hashV6(w0: number, w1: number, w2: number, w3: number, bits: number): number {
  let h = mix(w0 ^ Math.imul(bits + 1, 0x9e3779b1));
  h = mix(h ^ w1);
  h = mix(h ^ w2);
  return mix(h ^ w3);
}

function hashId(kind: number, s: string): number {
  // FNV-1a over the UTF-16 code units, then mixed.
  let h = 0x811c9dc5 ^ kind;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return mix(h);
}

/** Network mask of the first `bits` bits of a 32-bit word (bits 0..32). */
function maskOf(bits: number): number {
  return bits <= 0 ? 0 : bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
}

/** An IPv6 address's four 32-bit words (reused scratch: no allocation per lookup). */
const scratch = new Uint32Array(4);
function wordsOf(ip: { readonly hex: string }): Uint32Array {
  const h = ip.hex;
  scratch[0] = parseInt(h.slice(0, 8), 16);
  scratch[1] = parseInt(h.slice(8, 16), 16);
  scratch[2] = parseInt(h.slice(16, 24), 16);
  scratch[3] = parseInt(h.slice(24, 32), 16);
  return scratch;
}

/**
 * An open-addressing hash table (linear probing) of slot numbers; the keys
 * live in the index's columns, so a table costs 4 bytes per bucket, kept at
 * most 80% full (a miss then probes a handful of buckets).
 */
class SlotTable {
  buckets = new Int32Array(16).fill(-1);
  count = 0;

  /** Grows before an insert would take the table past 80% full; `hashOf` gives a stored slot's hash. */
  reserve(hashOf: (slot: number) => number): void {
    if ((this.count + 1) * 5 <= this.buckets.length * 4) return;
    const old = this.buckets;
    const next = new Int32Array(old.length * 2).fill(-1);
    const mask = next.length - 1;
    for (const s of old) {
      if (s < 0) continue;
      let i = hashOf(s) & mask;
      while (next[i] !== -1) i = (i + 1) & mask;
      next[i] = s;
    }
    this.buckets = next;
  }

  insert(slot: number, hash: number): void {
    const b = this.buckets;
    const mask = b.length - 1;
    let i = hash & mask;
    while (b[i] !== -1) i = (i + 1) & mask;
    b[i] = slot;
    this.count++;
  }

  /** Removes `slot`, shifting later members of its probe run back (no tombstones to slow later probes). */
  remove(slot: number, hash: number, hashOf: (slot: number) => number): void {
    const b = this.buckets;
    const mask = b.length - 1;
    let i = hash & mask;
    while (b[i] !== slot) i = (i + 1) & mask;
    b[i] = -1;
    this.count--;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const s = b[j] as number;
      if (s < 0) return;
      const home = hashOf(s) & mask;
      // Move s into the hole at i unless its home bucket lies cyclically in (i, j].
      if (i <= j ? home <= i || home > j : home <= i && home > j) {
        b[i] = s;
        b[j] = -1;
        i = j;
      }
    }
  }
}

/** Columns grow by a quarter: at most 25% of a column is ever unused, for a few more copies while it fills. */
function grown(n: number): number {
  return Math.max(64, Math.ceil(n * 1.25));
}

export class BlockIndex {
  #cap = 0;
  #used = 0;
  /** Slots 0..#top-1 have been handed out; freed ones are in #freeSlots. */
  #top = 0;
  #meta = new Uint8Array(0);
  /** Prefix length (address entries). */
  #bits = new Uint8Array(0);
  /** Epoch ms; Infinity: never. */
  #expires = new Float64Array(0);
  #added = new Float64Array(0);
  /** (reason, rule) pair id in #attrs. */
  #attr = new Uint32Array(0);
  /** IPv4: the network address; IPv6: its index in #v6; identity: its index in #ids. */
  #key = new Uint32Array(0);
  readonly #freeSlots: number[] = [];
  readonly #attrs = new AttrPool();
  /** IPv6 network addresses, four words each. */
  #v6 = new Uint32Array(0);
  #v6Top = 0;
  readonly #v6Free: number[] = [];
  /** Identity strings. */
  readonly #ids: (string | undefined)[] = [];
  readonly #idFree: number[] = [];

  readonly #tV4 = new SlotTable();
  readonly #tV6 = new SlotTable();
  readonly #tId = new SlotTable();
  #version = 0;
  /** Entries per prefix length, and the lengths in use, longest first. */
  readonly #v4Lens = new Uint32Array(33);
  readonly #v6Lens = new Uint32Array(129);
  #v4Order: number[] = [];
  #v6Order: number[] = [];
  /** Identity entries per kind (so a lookup of a kind the list has none of costs nothing, not a hash). */
  readonly #idKinds = new Uint32Array(BLOCK_KINDS.length);
  /** No entry expires before this (epoch ms): the expiry scan is skipped until then. */
  #nextExpiry = Infinity;

  /** Entries made on a hit, by slot; bounded, dropped when the slot changes. */
  readonly #made = new Map<number, BlockEntry>();

  readonly #hashV4 = (s: number): number => hashV4(this.#key[s] as number, this.#bits[s] as number);
  readonly #hashV6 = (s: number): number => {
    const k = (this.#key[s] as number) * 4;
    const w = this.#v6;
    return hashV6(w[k] as number, w[k + 1] as number, w[k + 2] as number, w[k + 3] as number, this.#bits[s] as number);
  };
  readonly #hashId = (s: number): number => hashId((this.#meta[s] as number) & 7, this.#ids[this.#key[s] as number] as string);

  get size(): number {
    return this.#used;
  }

  hasIdentityEntries(): boolean {
    return this.#tId.count > 0;
  }

  hasNetEntries(): boolean {
    return this.#tV4.count + this.#tV6.count > 0;
  }

  /**
   * Counts the changes (an entry set, removed or expired): a lookup's "no match" holds while it
   * is unchanged, since time alone only ever ends blocks (an entry's expiry), never starts one.
   */
  get version(): number {
    return this.#version;
  }

  /** Adds or replaces the entry for its key; returns the one it replaced. */
  set(e: BlockEntry): BlockEntry | undefined {
    this.#version++;
    let slot = this.#find(e);
    let replaced: BlockEntry | undefined;
    if (slot >= 0) {
      replaced = this.#entryAt(slot);
      this.#made.delete(slot);
      this.#attrs.release(this.#attr[slot] as number);
      this.#meta[slot] = ((this.#meta[slot] as number) & V6) | USED | kindIndex(e.kind) | (SOURCES.indexOf(e.source) << 3) | (e.audit ? AUDIT : 0);
    } else {
      slot = this.#newSlot();
      this.#meta[slot] = (e.cidr?.ip.v === 6 ? V6 : 0) | USED | kindIndex(e.kind) | (SOURCES.indexOf(e.source) << 3) | (e.audit ? AUDIT : 0);
      this.#insertKey(slot, e);
    }
    const exp = e.expiresAt ?? Infinity;
    this.#expires[slot] = exp;
    if (exp < this.#nextExpiry) this.#nextExpiry = exp;
    this.#added[slot] = e.addedAt;
    this.#attr[slot] = this.#attrs.intern(e.reason, e.rule);
    return replaced;
  }

  /** The entry stored under exactly this key (canonical value), live or not. */
  get(e: Pick<BlockEntry, 'kind' | 'value' | 'cidr'>): BlockEntry | undefined {
    const slot = this.#find(e);
    return slot < 0 ? undefined : this.#entryAt(slot);
  }

  /** Removes the entry under this key; returns it. */
  delete(e: Pick<BlockEntry, 'kind' | 'value' | 'cidr'>): BlockEntry | undefined {
    const slot = this.#find(e);
    if (slot < 0) return undefined;
    const out = this.#entryAt(slot);
    this.#removeSlot(slot);
    return out;
  }

  /** Epoch ms before which no entry expires (Infinity: none will). */
  get nextExpiry(): number {
    return this.#nextExpiry;
  }

  /**
   * Removes every entry whose expiry is at or before `now` and returns them.
   * One pass over the expiry column (a typed array: ~0.1 ms per 100,000
   * entries), only when something is due; no per-entry heap to keep.
   */
  takeExpired(now: number): BlockEntry[] {
    const out: BlockEntry[] = [];
    if (now < this.#nextExpiry) return out;
    let next = Infinity;
    const exp = this.#expires;
    for (let s = 0; s < this.#top; s++) {
      if (((this.#meta[s] as number) & USED) === 0) continue;
      const t = exp[s] as number;
      if (t <= now) {
        out.push(this.#entryAt(s));
        this.#removeSlot(s);
      } else if (t < next) next = t;
    }
    this.#nextExpiry = next;
    return out;
  }

  /** Every entry (made on the fly). */
  *entries(): IterableIterator<BlockEntry> {
    for (let s = 0; s < this.#top; s++) if (((this.#meta[s] as number) & USED) !== 0) yield this.#entryAt(s);
  }

  /** The live entry for the longest prefix containing `ip`; if it is dry-run, an enforced one at a shorter prefix wins. */
  matchIp(ip: ParsedIp, now: number): BlockEntry | undefined {
    let found = -1;
    if (ip.v === 4) {
      if (this.#tV4.count === 0) return undefined;
      const b = this.#tV4.buckets;
      const mask = b.length - 1;
      for (const bits of this.#v4Order) {
        const net = (ip.n & maskOf(bits)) >>> 0;
        for (let i = hashV4(net, bits) & mask; ; i = (i + 1) & mask) {
          const s = b[i] as number;
          if (s < 0) break;
          if (this.#key[s] === net && this.#bits[s] === bits) {
            if ((this.#expires[s] as number) > now) {
              if (((this.#meta[s] as number) & AUDIT) === 0) return this.#entryAt(s);
              if (found < 0) found = s;
            }
            break;
          }
        }
      }
      return found < 0 ? undefined : this.#entryAt(found);
    }
    if (this.#tV6.count === 0) return undefined;
    const w = wordsOf(ip);
    const a0 = w[0] as number;
    const a1 = w[1] as number;
    const a2 = w[2] as number;
    const a3 = w[3] as number;
    const b = this.#tV6.buckets;
    const mask = b.length - 1;
    const v6 = this.#v6;
    for (const bits of this.#v6Order) {
      const n0 = (a0 & maskOf(bits)) >>> 0;
      const n1 = (a1 & maskOf(bits - 32)) >>> 0;
      const n2 = (a2 & maskOf(bits - 64)) >>> 0;
      const n3 = (a3 & maskOf(bits - 96)) >>> 0;
      for (let i = hashV6(n0, n1, n2, n3, bits) & mask; ; i = (i + 1) & mask) {
        const s = b[i] as number;
        if (s < 0) break;
        const k = (this.#key[s] as number) * 4;
        if (this.#bits[s] === bits && v6[k] === n0 && v6[k + 1] === n1 && v6[k + 2] === n2 && v6[k + 3] === n3) {
          if ((this.#expires[s] as number) > now) {
            if (((this.#meta[s] as number) & AUDIT) === 0) return this.#entryAt(s);
            if (found < 0) found = s;
          }
          break;
        }
      }
    }
    return found < 0 ? undefined : this.#entryAt(found);
  }

  matchId(kind: IdentityBlockKind, value: string, now: number): BlockEntry | undefined {
    const k = kindIndex(kind);
    if (this.#idKinds[k] === 0) return undefined;
    const s = this.#findId(k, value);
    return s >= 0 && (this.#expires[s] as number) > now ? this.#entryAt(s) : undefined;
  }

  // ---- internals ----

  #find(e: Pick<BlockEntry, 'kind' | 'value' | 'cidr'>): number {
    const c = e.cidr;
    if (!c) return this.#findId(kindIndex(e.kind), e.value);
    const ip = c.ip;
    if (ip.v === 4) {
      const b = this.#tV4.buckets;
      const mask = b.length - 1;
      for (let i = hashV4(ip.n, c.bits) & mask; ; i = (i + 1) & mask) {
        const s = b[i] as number;
        if (s < 0) return -1;
        if (this.#key[s] === ip.n && this.#bits[s] === c.bits) return s;
      }
    }
    const w = wordsOf(ip);
    const b = this.#tV6.buckets;
    const mask = b.length - 1;
    const v6 = this.#v6;
    for (let i = hashV6(w[0] as number, w[1] as number, w[2] as number, w[3] as number, c.bits) & mask; ; i = (i + 1) & mask) {
      const s = b[i] as number;
      if (s < 0) return -1;
      const k = (this.#key[s] as number) * 4;
      if (this.#bits[s] === c.bits && v6[k] === w[0] && v6[k + 1] === w[1] && v6[k + 2] === w[2] && v6[k + 3] === w[3]) return s;
    }
  }

  #findId(kind: number, value: string): number {
    const b = this.#tId.buckets;
    const mask = b.length - 1;
    for (let i = hashId(kind, value) & mask; ; i = (i + 1) & mask) {
      const s = b[i] as number;
      if (s < 0) return -1;
      if (((this.#meta[s] as number) & 7) === kind && this.#ids[this.#key[s] as number] === value) return s;
    }
  }

  /** Stores the key of a new slot (its meta byte is set) and enters it in its table. */
  #insertKey(slot: number, e: BlockEntry): void {
    const c = e.cidr;
    if (!c) {
      const k = this.#idFree.pop() ?? this.#ids.length;
      this.#ids[k] = e.value;
      this.#key[slot] = k;
      this.#tId.reserve(this.#hashId);
      this.#tId.insert(slot, hashId(kindIndex(e.kind), e.value));
      this.#idKinds[kindIndex(e.kind)]!++;
      return;
    }
    this.#bits[slot] = c.bits;
    if (c.ip.v === 4) {
      this.#key[slot] = c.ip.n;
      this.#tV4.reserve(this.#hashV4);
      this.#tV4.insert(slot, hashV4(c.ip.n, c.bits));
      if (this.#v4Lens[c.bits]!++ === 0) this.#v4Order = lensInUse(this.#v4Lens);
      return;
    }
    const k = this.#v6Free.pop() ?? this.#v6Top++;
    if (k * 4 + 4 > this.#v6.length) {
      const next = new Uint32Array(grown(this.#v6.length / 4) * 4);
      next.set(this.#v6);
      this.#v6 = next;
    }
    const w = wordsOf(c.ip);
    this.#v6.set(w, k * 4);
    this.#key[slot] = k;
    this.#tV6.reserve(this.#hashV6);
    this.#tV6.insert(slot, hashV6(w[0] as number, w[1] as number, w[2] as number, w[3] as number, c.bits));
    if (this.#v6Lens[c.bits]!++ === 0) this.#v6Order = lensInUse(this.#v6Lens);
  }

  #removeSlot(slot: number): void {
    this.#version++;
    this.#made.delete(slot);
    const meta = this.#meta[slot] as number;
    const bits = this.#bits[slot] as number;
    if ((meta & 7) >= 2) {
      this.#tId.remove(slot, this.#hashId(slot), this.#hashId);
      this.#ids[this.#key[slot] as number] = undefined;
      this.#idFree.push(this.#key[slot] as number);
      this.#idKinds[meta & 7]!--;
    } else if ((meta & V6) !== 0) {
      this.#tV6.remove(slot, this.#hashV6(slot), this.#hashV6);
      this.#v6Free.push(this.#key[slot] as number);
      if (--this.#v6Lens[bits]! === 0) this.#v6Order = lensInUse(this.#v6Lens);
    } else {
      this.#tV4.remove(slot, this.#hashV4(slot), this.#hashV4);
      if (--this.#v4Lens[bits]! === 0) this.#v4Order = lensInUse(this.#v4Lens);
    }
    this.#attrs.release(this.#attr[slot] as number);
    this.#meta[slot] = 0;
    this.#freeSlots.push(slot);
    this.#used--;
  }

  #newSlot(): number {
    let s = this.#freeSlots.pop();
    if (s === undefined) {
      if (this.#top === this.#cap) this.#grow();
      s = this.#top++;
    }
    this.#used++;
    return s;
  }

  #grow(): void {
    const cap = grown(this.#cap);
    const g = <T extends Uint8Array | Uint32Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const n = make(cap);
      n.set(a);
      return n;
    };
    this.#meta = g(this.#meta, (n) => new Uint8Array(n));
    this.#bits = g(this.#bits, (n) => new Uint8Array(n));
    this.#expires = g(this.#expires, (n) => new Float64Array(n));
    this.#added = g(this.#added, (n) => new Float64Array(n));
    this.#attr = g(this.#attr, (n) => new Uint32Array(n));
    this.#key = g(this.#key, (n) => new Uint32Array(n));
    this.#cap = cap;
  }

  #entryAt(slot: number): BlockEntry {
    const cached = this.#made.get(slot);
    if (cached) return cached;
    const meta = this.#meta[slot] as number;
    const kind = BLOCK_KINDS[meta & 7] as BlockKind;
    let value: string;
    let cidr: Cidr | null = null;
    if (kind === 'ip' || kind === 'cidr') {
      const bits = this.#bits[slot] as number;
      let ip: ParsedIp;
      let addr: string;
      if ((meta & V6) !== 0) {
        const k = (this.#key[slot] as number) * 4;
        const w = this.#v6.subarray(k, k + 4);
        let hex = '';
        for (let i = 0; i < 4; i++) hex += (w[i] as number).toString(16).padStart(8, '0');
        ip = Object.freeze({ v: 6, hex });
        addr = formatV6(w);
      } else {
        ip = Object.freeze({ v: 4, n: this.#key[slot] as number });
        addr = formatIp(ip);
      }
      cidr = { ip, bits, text: `${addr}/${bits}` };
      value = kind === 'ip' ? addr : cidr.text;
    } else {
      value = this.#ids[this.#key[slot] as number] as string;
    }
    const exp = this.#expires[slot] as number;
    const attr = this.#attr[slot] as number;
    const e: BlockEntry = Object.freeze({
      kind,
      value,
      reason: this.#attrs.reason(attr),
      source: SOURCES[(meta >> 3) & 3] as BlockSource,
      expiresAt: exp === Infinity ? null : exp,
      addedAt: this.#added[slot] as number,
      rule: this.#attrs.rule(attr),
      audit: (meta & AUDIT) !== 0,
      cidr,
    });
    if (this.#made.size >= 256) this.#made.clear();
    this.#made.set(slot, e);
    return e;
  }
}

/** RFC 5952 text of an IPv6 address given as four words (what formatIp makes of its hex, without parsing it back). */
function formatV6(w: Uint32Array): string {
  const g = [0, 0, 0, 0, 0, 0, 0, 0];
  for (let i = 0; i < 4; i++) {
    g[2 * i] = (w[i] as number) >>> 16;
    g[2 * i + 1] = (w[i] as number) & 0xffff;
  }
  // The longest run (>= 2) of zero groups becomes "::", the first one on a tie.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number) => g.slice(from, to).map((x) => x.toString(16)).join(':');
  return best === -1 ? hex(0, 8) : `${hex(0, best)}::${hex(best + bestLen, 8)}`;
}

function lensInUse(counts: Uint32Array): number[] {
  const out: number[] = [];
  for (let b = counts.length - 1; b >= 0; b--) if ((counts[b] as number) > 0) out.push(b);
  return out;
}
