import { describe, expect, it } from 'vitest';
import { formatIp, parseIp } from '../../src/http/cidr.ts';

/** The dotted-decimal rule written the obvious way: four parts, each 0-255 without a leading zero. */
const OCTET = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
function referenceV4(s: string): number | null {
  const parts = s.split('.');
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p))) return null;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

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

describe('IPv4 parsing', () => {
  it('accepts and refuses exactly what the dotted-decimal rule does (random near-addresses and edge cases)', () => {
    const r = rng(16);
    const alphabet = '0123456789....25x -';
    const cases = ['0.0.0.0', '255.255.255.255', '256.1.1.1', '01.2.3.4', '1.2.3.04', '1.2.3', '1.2.3.4.', '.1.2.3.4', '1..2.3', '1.2.3.4.5', '1234.1.1.1', '', '1.2.3.-4', '1.2.3.4 ', '٣.1.1.1', '10.0.0.1', '192.168.001.1', '00.0.0.0', '0.0.0.00'];
    for (let i = 0; i < 20_000; i++) {
      const n = 1 + Math.floor(r() * 16);
      let s = '';
      for (let j = 0; j < n; j++) s += alphabet[Math.floor(r() * alphabet.length)];
      cases.push(s);
      // And real-looking addresses, some with an octet out of range or with a leading zero.
      const oct = () => String(Math.floor(r() * 300)).padStart(r() < 0.1 ? 3 : 1, '0');
      cases.push(`${oct()}.${oct()}.${oct()}.${oct()}`);
    }
    let valid = 0;
    for (const s of cases) {
      const want = referenceV4(s);
      const got = parseIp(s);
      if (want === null) {
        // Not IPv4; without a colon it cannot be IPv6 either.
        if (!s.includes(':')) expect(got, JSON.stringify(s)).toBeNull();
      } else {
        valid++;
        expect(got, s).toEqual({ v: 4, n: want });
        expect(formatIp(got!)).toBe(s);
      }
    }
    expect(valid).toBeGreaterThan(5000);
  });
});
