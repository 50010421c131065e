import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderReadme } from '../../scripts/gen-readme-tables.ts';
import { SETTINGS } from '../../src/config/settings.ts';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const ci = readFileSync(new URL('../../.ci/run', import.meta.url), 'utf8');

describe('README', () => {
  it('has the current settings table (regenerate with node scripts/gen-readme-tables.ts)', () => {
    expect(readme).toContain('<!-- settings:start -->');
    expect(renderReadme(readme)).toBe(readme);
    for (const s of Object.values(SETTINGS)) expect(readme).toContain(`\`${s.env}\``);
  });

  it('names the two commands, and .ci/run calls exactly the test command', () => {
    expect(readme).toMatch(/```sh\nnpm start\n```/);
    expect(readme).toMatch(/```sh\nnpm test\n```/);
    expect(ci.trim().split('\n').at(-1)).toBe('npm test');
  });
});
