/**
 * A fast 32-bit string hash for sketches (HyperLogLog). FNV-1a alone has weak
 * low bits; the murmur3 finaliser spreads them so register indexes are uniform.
 * Not for anything an attacker could exploit beyond skewing its own estimate.
 */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
