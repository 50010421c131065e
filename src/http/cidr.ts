/**
 * IP addresses and CIDR prefixes for the block list and the trusted-proxy
 * list. Addresses are parsed once into a compact form (IPv4: an unsigned
 * 32-bit number; IPv6: 32 lowercase hex digits) and prefixes are kept in one
 * hash map per prefix length, so a lookup costs one map probe per distinct
 * prefix length in use (at most 33 for IPv4, 129 for IPv6), whatever the
 * number of entries. That is what keeps a 100,000-entry block list O(1) for
 * exact addresses and fast for CIDRs.
 */

export type ParsedIp = { readonly v: 4; readonly n: number } | { readonly v: 6; readonly hex: string };

/**
 * Dotted-decimal IPv4, strictly: four octets of 1-3 ASCII digits, no leading
 * zero (01 could be octal elsewhere), each at most 255. Read character by
 * character: no split array and four pattern tests per address (a 100,000
 * entry block list parses each of its addresses once).
 */
function parseV4(s: string): number | null {
  const len = s.length;
  let n = 0;
  let parts = 0;
  let i = 0;
  for (;;) {
    const start = i;
    let v = 0;
    while (i < len) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) break;
      v = v * 10 + (c - 48);
      if (++i - start > 3) return null;
    }
    const digits = i - start;
    if (digits === 0 || (digits > 1 && s.charCodeAt(start) === 48) || v > 255) return null;
    n = n * 256 + v;
    parts++;
    if (i === len) break;
    if (parts === 4 || s.charCodeAt(i) !== 46) return null;
    i++;
  }
  return parts === 4 ? n : null;
}

function parseV6Hex(s: string): string | null {
  // A zone id (fe80::1%eth0) names an interface, not part of the address.
  const pct = s.indexOf('%');
  if (pct !== -1) s = s.slice(0, pct);
  let tail: string[] = [];
  // Embedded IPv4 in the last 32 bits (::ffff:1.2.3.4, 64:ff9b::1.2.3.4).
  const lastColon = s.lastIndexOf(':');
  if (lastColon !== -1 && s.indexOf('.', lastColon) !== -1) {
    const v4 = parseV4(s.slice(lastColon + 1));
    if (v4 === null) return null;
    tail = [(v4 >>> 16).toString(16), (v4 & 0xffff).toString(16)];
    s = s.slice(0, lastColon + 1);
    if (!s.endsWith('::')) s = s.slice(0, -1);
  }
  const dbl = s.indexOf('::');
  if (dbl !== -1 && s.indexOf('::', dbl + 1) !== -1) return null;
  const split = (x: string): string[] | null => (x === '' ? [] : x.split(':'));
  let groups: string[];
  if (dbl === -1) {
    const g = split(s);
    if (!g) return null;
    groups = [...g, ...tail];
    if (groups.length !== 8) return null;
  } else {
    const head = split(s.slice(0, dbl));
    const rest = split(s.slice(dbl + 2));
    if (!head || !rest) return null;
    const known = head.length + rest.length + tail.length;
    if (known > 7) return null;
    groups = [...head, ...Array<string>(8 - known).fill('0'), ...rest, ...tail];
  }
  let hex = '';
  for (const g of groups) {
    if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return null;
    hex += g.toLowerCase().padStart(4, '0');
  }
  return hex;
}

const V4_MAPPED_PREFIX = '00000000000000000000ffff';

/**
 * Parsed addresses by their text. The block list parses the client's address
 * on every request (the client-IP resolver too, behind trusted proxies or for
 * IPv6 peers), and a sidecar sees the same few peers over and over; a map
 * probe costs less than the split and four pattern tests of parseV4.
 * Bounded: cleared when full.
 */
const parsed = new Map<string, ParsedIp | null>();
const PARSED_MAX = 4096;

/** Parses an IPv4 or IPv6 address; IPv4-mapped IPv6 (::ffff:a.b.c.d) becomes IPv4. Null if invalid. The result is frozen and may be shared. */
export function parseIp(s: string): ParsedIp | null {
  let p = parsed.get(s);
  if (p === undefined) {
    p = parseIpText(s);
    if (parsed.size >= PARSED_MAX) parsed.clear();
    parsed.set(s, p);
  }
  return p;
}

function parseIpText(s: string): ParsedIp | null {
  if (s.length === 0 || s.length > 64) return null;
  if (s.indexOf(':') === -1) {
    const n = parseV4(s);
    return n === null ? null : Object.freeze({ v: 4, n });
  }
  const body = s.startsWith('[') && s.endsWith(']') ? s.slice(1, -1) : s;
  const hex = parseV6Hex(body);
  if (hex === null) return null;
  if (hex.startsWith(V4_MAPPED_PREFIX)) return Object.freeze({ v: 4, n: parseInt(hex.slice(24), 16) });
  return Object.freeze({ v: 6, hex });
}

/** Canonical text of an address: dotted IPv4, or RFC 5952 compressed IPv6. */
export function formatIp(ip: ParsedIp): string {
  if (ip.v === 4) return `${ip.n >>> 24}.${(ip.n >>> 16) & 255}.${(ip.n >>> 8) & 255}.${ip.n & 255}`;
  const groups: string[] = [];
  for (let i = 0; i < 32; i += 4) groups.push(parseInt(ip.hex.slice(i, i + 4), 16).toString(16));
  // Longest run (>= 2) of zero groups becomes "::" (RFC 5952 section 4.2).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best === -1) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** Normalizes an address string (IPv4-mapped IPv6 to IPv4, IPv6 compressed); returns the input if invalid. */
export function normalizeIp(s: string): string {
  const p = parseIp(s);
  return p ? formatIp(p) : s;
}

export interface Cidr {
  readonly ip: ParsedIp;
  readonly bits: number;
  /** Canonical text: network address / prefix length. */
  readonly text: string;
}

export class CidrError extends Error {}

/** Parses "a.b.c.d/n", "x::/n", or a bare address (a /32 or /128). Host bits must be zero. */
export function parseCidr(s: string): Cidr {
  const slash = s.indexOf('/');
  const addr = slash === -1 ? s : s.slice(0, slash);
  const ip = parseIp(addr.trim());
  if (!ip) throw new CidrError(`"${s}" is not an IPv4 or IPv6 address or CIDR (e.g. 203.0.113.0/24, 2001:db8::/32)`);
  const written6 = addr.includes(':');
  const writtenMax = written6 ? 128 : 32;
  let bits = writtenMax;
  if (slash !== -1) {
    const b = s.slice(slash + 1).trim();
    if (!/^\d{1,3}$/.test(b) || Number(b) > writtenMax) throw new CidrError(`"${s}": prefix length must be 0..${writtenMax}`);
    bits = Number(b);
  }
  // An IPv4-mapped prefix (::ffff:10.0.0.0/104) is an IPv4 prefix.
  if (ip.v === 4 && written6) {
    if (bits < 96) throw new CidrError(`"${s}": an IPv4-mapped prefix must be at least /96`);
    bits -= 96;
  }
  const max = ip.v === 4 ? 32 : 128;
  if (keyOf(ip, max) !== keyOf(networkOf(ip, bits), max)) {
    throw new CidrError(`"${s}" has host bits set; did you mean ${formatIp(networkOf(ip, bits))}/${bits}?`);
  }
  return { ip, bits, text: `${formatIp(ip)}/${bits}` };
}

function networkOf(ip: ParsedIp, bits: number): ParsedIp {
  if (ip.v === 4) return { v: 4, n: bits === 0 ? 0 : ((ip.n >>> (32 - bits)) << (32 - bits)) >>> 0 };
  const full = Math.floor(bits / 4);
  let hex = ip.hex.slice(0, full);
  if (bits % 4) hex += (parseInt(ip.hex[full] as string, 16) & ((0xf << (4 - (bits % 4))) & 0xf)).toString(16);
  return { v: 6, hex: hex.padEnd(32, '0') };
}

/** Key of the prefix of `ip` of length `bits`, as used in the per-length maps. */
function keyOf(ip: ParsedIp, bits: number): number | string {
  if (ip.v === 4) return bits === 0 ? 0 : ip.n >>> (32 - bits);
  const full = bits >> 2;
  const rem = bits & 3;
  if (rem === 0) return ip.hex.slice(0, full);
  return ip.hex.slice(0, full) + (parseInt(ip.hex[full] as string, 16) & ((0xf << (4 - rem)) & 0xf)).toString(16);
}

/**
 * A map from CIDR prefixes (and single addresses) to values, with
 * longest-prefix lookup. One hash map per prefix length in use.
 */
export class PrefixMap<V> {
  private readonly v4 = new Map<number, Map<number, V>>();
  private readonly v6 = new Map<number, Map<string, V>>();
  /** Prefix lengths in use, longest first. */
  private v4Lens: number[] = [];
  private v6Lens: number[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  set(cidr: Cidr, value: V): void {
    if (cidr.ip.v === 4) {
      let m = this.v4.get(cidr.bits);
      if (!m) {
        m = new Map();
        this.v4.set(cidr.bits, m);
        this.v4Lens = [...this.v4.keys()].sort((a, b) => b - a);
      }
      const k = keyOf(cidr.ip, cidr.bits) as number;
      if (!m.has(k)) this.count++;
      m.set(k, value);
    } else {
      let m = this.v6.get(cidr.bits);
      if (!m) {
        m = new Map();
        this.v6.set(cidr.bits, m);
        this.v6Lens = [...this.v6.keys()].sort((a, b) => b - a);
      }
      const k = keyOf(cidr.ip, cidr.bits) as string;
      if (!m.has(k)) this.count++;
      m.set(k, value);
    }
  }

  /** The value stored for exactly this prefix. */
  getExact(cidr: Cidr): V | undefined {
    if (cidr.ip.v === 4) return this.v4.get(cidr.bits)?.get(keyOf(cidr.ip, cidr.bits) as number);
    return this.v6.get(cidr.bits)?.get(keyOf(cidr.ip, cidr.bits) as string);
  }

  delete(cidr: Cidr): boolean {
    if (cidr.ip.v === 4) {
      const m = this.v4.get(cidr.bits);
      if (!m || !m.delete(keyOf(cidr.ip, cidr.bits) as number)) return false;
      if (m.size === 0) {
        this.v4.delete(cidr.bits);
        this.v4Lens = this.v4Lens.filter((b) => b !== cidr.bits);
      }
    } else {
      const m = this.v6.get(cidr.bits);
      if (!m || !m.delete(keyOf(cidr.ip, cidr.bits) as string)) return false;
      if (m.size === 0) {
        this.v6.delete(cidr.bits);
        this.v6Lens = this.v6Lens.filter((b) => b !== cidr.bits);
      }
    }
    this.count--;
    return true;
  }

  /** Value of the longest prefix containing `ip`, optionally the first that `accept` takes. */
  lookup(ip: ParsedIp, accept?: (v: V) => boolean): V | undefined {
    if (ip.v === 4) {
      for (const bits of this.v4Lens) {
        const v = (this.v4.get(bits) as Map<number, V>).get(bits === 0 ? 0 : ip.n >>> (32 - bits));
        if (v !== undefined && (!accept || accept(v))) return v;
      }
      return undefined;
    }
    for (const bits of this.v6Lens) {
      const v = (this.v6.get(bits) as Map<string, V>).get(keyOf(ip, bits) as string);
      if (v !== undefined && (!accept || accept(v))) return v;
    }
    return undefined;
  }

  clear(): void {
    this.v4.clear();
    this.v6.clear();
    this.v4Lens = [];
    this.v6Lens = [];
    this.count = 0;
  }
}

/** A set of CIDRs with a membership test (e.g. trusted proxies). */
export class CidrSet {
  private readonly map = new PrefixMap<true>();
  constructor(cidrs: Iterable<string | Cidr> = []) {
    for (const c of cidrs) this.add(c);
  }
  add(c: string | Cidr): void {
    this.map.set(typeof c === 'string' ? parseCidr(c) : c, true);
  }
  get size(): number {
    return this.map.size;
  }
  has(ip: ParsedIp | string): boolean {
    const p = typeof ip === 'string' ? parseIp(ip) : ip;
    return p !== null && this.map.lookup(p) === true;
  }
}
