import { describe, expect, it } from 'vitest';
import { watchFilter } from '../../src/util/watch-filter.ts';

describe('watchFilter', () => {
  const f = watchFilter(['/etc/palisade/policy/policy.yaml']);
  it('reacts to the watched file and to the kubelet atomic-writer entries', () => {
    expect(f('policy.yaml')).toBe(true);
    expect(f('..data')).toBe(true);
    expect(f('..2026_11_27_10_00_00.123')).toBe(true);
    expect(f(null)).toBe(true);
  });
  it('ignores other files in the same directory', () => {
    expect(f('decisions.ndjson')).toBe(false);
    expect(f('policy.yaml.swp')).toBe(false);
  });
});
