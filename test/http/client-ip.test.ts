import { describe, expect, it } from 'vitest';
import { CidrSet, formatIp, parseCidr, parseIp, PrefixMap } from '../../src/http/cidr.ts';
import { createClientIpResolver, parseTrustedProxies } from '../../src/http/client-ip.ts';

describe('IP and CIDR parsing', () => {
  it('canonicalises addresses (IPv4-mapped to IPv4, RFC 5952 IPv6)', () => {
    const cases: [string, string | null][] = [
      ['192.0.2.1', '192.0.2.1'],
      ['::ffff:192.0.2.1', '192.0.2.1'],
      ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['fe80::1%eth0', 'fe80::1'],
      ['[::1]', '::1'],
      ['64:ff9b::192.0.2.1', '64:ff9b::c000:201'],
      ['192.0.2', null],
      ['256.0.0.1', null],
      ['01.2.3.4', null],
      ['1::2::3', null],
      ['1:2:3:4:5:6:7:8:9', null],
    ];
    for (const [input, want] of cases) {
      const p = parseIp(input);
      expect(p ? formatIp(p) : null, input).toBe(want);
    }
  });

  it('parses each address text once: the same frozen result comes back, and parsing many stays right', () => {
    const a = parseIp('198.51.100.7');
    expect(parseIp('198.51.100.7')).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(parseIp('2001:db8::7'))).toBe(true);
    expect(parseIp('198.51.100.256')).toBeNull();
    expect(parseIp('198.51.100.256')).toBeNull();
    // More distinct addresses than the memo holds: every answer is still the parse of its own text.
    for (let i = 0; i < 10_000; i++) {
      const text = `10.${(i >> 8) & 255}.${i & 255}.${i % 7}`;
      expect(formatIp(parseIp(text)!)).toBe(text);
    }
    expect(formatIp(parseIp('198.51.100.7')!)).toBe('198.51.100.7');
  });

  it('refuses a CIDR with host bits, suggesting the network', () => {
    expect(() => parseCidr('10.1.2.3/8')).toThrow('"10.1.2.3/8" has host bits set; did you mean 10.0.0.0/8?');
    expect(() => parseCidr('2001:db8::1/32')).toThrow(/did you mean 2001:db8::\/32\?/);
    expect(parseCidr('::ffff:10.0.0.0/104').text).toBe('10.0.0.0/8');
    expect(() => parseCidr('10.0.0.0/33')).toThrow('prefix length must be 0..32');
  });

  it('finds the longest prefix, for IPv4 and IPv6, at any prefix length', () => {
    const m = new PrefixMap<string>();
    for (const c of ['0.0.0.0/0', '10.0.0.0/8', '10.1.0.0/16', '10.1.2.3/32', '2001:db8::/32', '2001:db8:8000::/33', '2001:db8:8000::1/128']) m.set(parseCidr(c), c);
    const at = (ip: string) => m.lookup(parseIp(ip)!);
    expect(at('10.1.2.3')).toBe('10.1.2.3/32');
    expect(at('10.1.9.9')).toBe('10.1.0.0/16');
    expect(at('10.200.0.1')).toBe('10.0.0.0/8');
    expect(at('192.0.2.1')).toBe('0.0.0.0/0');
    expect(at('2001:db8:7fff::1')).toBe('2001:db8::/32');
    expect(at('2001:db8:8000::2')).toBe('2001:db8:8000::/33');
    expect(at('2001:db8:8000::1')).toBe('2001:db8:8000::1/128');
    expect(at('2001:db9::1')).toBeUndefined();
    expect(m.delete(parseCidr('10.1.0.0/16'))).toBe(true);
    expect(at('10.1.9.9')).toBe('10.0.0.0/8');
  });
});

describe('client IP from X-Forwarded-For', () => {
  it('uses the socket address when no proxy is trusted, whatever the header says', () => {
    const ip = createClientIpResolver('');
    expect(ip('::ffff:127.0.0.1', '203.0.113.9')).toBe('127.0.0.1');
  });

  it('walks X-Forwarded-For from the right through trusted hops only', () => {
    const ip = createClientIpResolver('10.0.0.0/8, 192.168.1.7, fd00::/8');
    // Untrusted peer: header ignored.
    expect(ip('198.51.100.1', '203.0.113.9')).toBe('198.51.100.1');
    // Trusted peer: the rightmost untrusted hop is the client; the client's own prefix is ignored.
    expect(ip('10.0.0.5', 'spoofed, 203.0.113.9, 10.2.2.2')).toBe('203.0.113.9');
    expect(ip('10.0.0.5', ['1.1.1.1, 203.0.113.9', '192.168.1.7'])).toBe('203.0.113.9');
    expect(ip('fd00::1', '2001:db8::7')).toBe('2001:db8::7');
    // Garbage appended after a trusted hop: stop at the last trusted address.
    expect(ip('10.0.0.5', '203.0.113.9, not-an-ip')).toBe('10.0.0.5');
    // Every hop trusted: the leftmost.
    expect(ip('10.0.0.5', '10.9.9.9, 10.8.8.8')).toBe('10.9.9.9');
    expect(ip('10.0.0.5', undefined)).toBe('10.0.0.5');
  });

  it('names a bad trusted-proxy entry', () => {
    expect(() => parseTrustedProxies('10.0.0.0/8, 10.0.0.300')).toThrow(/PALISADE_TRUSTED_PROXIES: "10\.0\.0\.300" is not an IPv4 or IPv6 address or CIDR/);
    expect(new CidrSet(['10.0.0.0/8']).has('10.255.0.1')).toBe(true);
  });
});
