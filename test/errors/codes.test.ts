import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CODES } from '../../src/errors/codes.ts';
import { renderCodesDoc } from '../../scripts/gen-codes-doc.ts';

describe('stable codes', () => {
  it('docs/codes.md lists exactly the codes of src/errors/codes.ts (regenerate with node scripts/gen-codes-doc.ts)', () => {
    const doc = readFileSync(new URL('../../docs/codes.md', import.meta.url), 'utf8');
    const documented = [...doc.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]);
    expect(documented).toEqual(Object.entries(CODES).map(([c, s]) => [c, s.status]));
    expect(doc).toBe(renderCodesDoc());
  });

  it('every code is upper snake case with a status, title and description', () => {
    for (const [code, spec] of Object.entries(CODES)) {
      expect(code).toMatch(/^[A-Z][A-Z0-9_]+$/);
      expect(spec.status).toBeGreaterThanOrEqual(200);
      expect(spec.title.length).toBeGreaterThan(0);
      expect(spec.description.length).toBeGreaterThan(20);
    }
  });
});
