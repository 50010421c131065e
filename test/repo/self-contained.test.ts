/**
 * A repository's tests read only the repository: a clone anywhere (with no
 * folder beside it) must pass. Code that names a path outside the checkout
 * fails here with the file and line, so it cannot slip back in.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..', '..');
// A parent-folder step out of the checkout, in the forms code writes it: '../x' in a string, or '..' as a path.join/resolve argument from the repo root.
const OUTSIDE = [/['"`]\.\.\/shared\b/, /['"`]\.\.['"`]\s*,\s*['"`]shared['"`]/, /\.\.\/shared\/ocsf/];

describe('self-contained repository', () => {
  it('no source, test, script or benchmark reads the shared folder beside the checkout', () => {
    const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '--', 'src', 'test', 'scripts', 'bench', 'detectors', 'dashboards', 'deploy', '.ci'], { cwd: root, encoding: 'utf8' })
      .split('\n')
      .filter((f) => /\.(ts|js|sh|json|yaml|yml)$/.test(f) && !f.startsWith('test/fixtures/'));
    const hits: string[] = [];
    for (const f of files) {
      const lines = readFileSync(resolve(root, f), 'utf8').split('\n');
      lines.forEach((line, i) => {
        if (f === 'test/repo/self-contained.test.ts') return;
        if (OUTSIDE.some((re) => re.test(line))) hits.push(`${f}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(hits).toEqual([]);
  });

  it('the official OCSF data the tests use is vendored with its licence and source', () => {
    const dir = resolve(root, 'test', 'fixtures', 'ocsf-1.8.0');
    expect(readFileSync(resolve(dir, 'LICENSE'), 'utf8')).toMatch(/Apache License/);
    expect(readFileSync(resolve(dir, 'SOURCE.md'), 'utf8')).toMatch(/OCSF 1\.8\.0/);
    expect(JSON.parse(readFileSync(resolve(dir, 'version.json'), 'utf8')).version).toBe('1.8.0');
  });
});
