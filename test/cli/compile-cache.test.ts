// Node's compile cache for the sidecar (src/cli/node-flags.ts, bin/warm-compile-cache.js): once filled,
// `palisade sidecar` loads every one of its modules from it and type-strips none (a thread that strips
// one keeps Node's type stripper loaded, ~16 MiB: docs/deploy.md "Memory settings").
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { compileCacheDir, SIDECAR_ENV } from '../../src/cli/node-flags.ts';
import { tempDirs } from '../support/temp-dirs.ts';
import { BIN } from './support/run.ts';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const tempDir = tempDirs('palisade-compile-cache');

describe('compile cache', () => {
  it('is one of the settings the sidecar gives itself, in the package\'s own node_modules/.cache', () => {
    expect(SIDECAR_ENV['NODE_COMPILE_CACHE']).toBe(compileCacheDir());
    expect(compileCacheDir()).toBe(join(ROOT, 'node_modules', '.cache', 'palisade-compile'));
  });

  it('once warmed, the sidecar\'s modules load from it: none is type-stripped again', { timeout: 60_000 }, async () => {
    const dir = tempDir();
    const env = { ...process.env, NODE_COMPILE_CACHE: dir };
    const warm = await run(process.execPath, [join(ROOT, 'bin', 'warm-compile-cache.js')], { env });
    const modules = Number(/: (\d+) modules\n$/.exec(warm.stdout)?.[1]);
    expect(modules).toBeGreaterThan(150);

    // `sidecar --help` loads the whole command (every static import of the sidecar) and exits.
    const sidecar = await run(process.execPath, [BIN, 'sidecar', '--help'], { env: { ...env, NODE_DEBUG_NATIVE: 'COMPILE_CACHE' } });
    expect(sidecar.stdout).toContain('usage: palisade sidecar');
    const strippedFromCache = sidecar.stderr.match(/retrieving transpile cache for StrippedTypeScript \S+\.\.\.success/g) ?? [];
    const strippedAgain = sidecar.stderr.match(/no transpile cache for StrippedTypeScript \S+/g) ?? [];
    expect(strippedAgain).toEqual([]);
    expect(strippedFromCache.length).toBeGreaterThan(100);
  });
});
