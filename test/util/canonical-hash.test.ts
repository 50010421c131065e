import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJsonSha256 } from '../../src/util/canonical-hash.ts';
import { canonicalJson } from '../../src/util/freeze.ts';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describe('canonicalJsonSha256', () => {
  it('is the SHA-256 of canonicalJson for scalars, nesting, key order, undefined members and non-ASCII text', () => {
    const values: unknown[] = [
      null, true, 0, -1.5e-7, 'a "quoted"\nline', 'é ✓ 𝄞', [], {},
      { b: 1, a: [1, 'x', { d: null, c: undefined }], 'ü': { z: [], y: {} } },
      [[[]], [{}], { '': '' }],
    ];
    for (const v of values) expect(canonicalJsonSha256(v)).toBe(sha(canonicalJson(v)));
  });

  it('streams documents larger than its 64 KiB pieces to the same digest (a 100,000-entry block list)', () => {
    const entries = Array.from({ length: 100_000 }, (_, i) => ({ reason: `r${i % 7}`, ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, audit: i % 3 === 0, ...(i % 5 === 0 ? { id: `e-${i}` } : {}) }));
    const doc = { spec: { blocklist: { entries } }, apiVersion: 'palisade.dev/v1', kind: 'Policy' };
    expect(canonicalJsonSha256(doc)).toBe(sha(canonicalJson(doc)));
  });
});
