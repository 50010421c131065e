// The Node/V8 settings `palisade sidecar` gives itself (src/cli/node-flags.ts): added once by
// re-executing the same process, never over a value the user gave.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { memoryForHeap, missingNodeFlags, SIDECAR_ENV, sidecarNodeFlags } from '../../src/cli/node-flags.ts';
import { publicItemsPolicy } from '../support/harness.ts';
import { sidecarProcessBed } from '../support/sidecar-process.ts';

const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
const environ = (pid: number) => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(Boolean);

describe('missingNodeFlags', () => {
  it('adds only what neither the command line nor NODE_OPTIONS sets, whatever the spelling', () => {
    const wanted = ['--max-semi-space-size=2', '--stack-trace-limit=20'];
    expect(missingNodeFlags(wanted, [], undefined)).toEqual(wanted);
    expect(missingNodeFlags(wanted, ['--max-semi-space-size=16'], undefined)).toEqual(['--stack-trace-limit=20']);
    expect(missingNodeFlags(wanted, ['--max_semi_space_size=16'], '')).toEqual(['--stack-trace-limit=20']);
    expect(missingNodeFlags(wanted, [], ' --stack-trace-limit=5  --max-semi-space-size=8 ')).toEqual([]);
    expect(missingNodeFlags(wanted, ['--cpu-prof'], '--enable-source-maps')).toEqual(wanted);
  });
});

describe('sidecarNodeFlags', () => {
  it('caps the young generation only where V8 would make it larger: over 1 GiB of memory', () => {
    expect(sidecarNodeFlags(256 * 1024 ** 2)).toEqual([]);
    expect(sidecarNodeFlags(1024 ** 3)).toEqual([]);
    expect(sidecarNodeFlags(2 * 1024 ** 3)).toEqual(['--max-semi-space-size=16']);
    expect(sidecarNodeFlags(24 * 1024 ** 3)).toEqual(['--max-semi-space-size=16']);
  });
});

describe('palisade sidecar re-executes itself with its Node settings', () => {
  const bed = sidecarProcessBed(publicItemsPolicy('node-flags'));

  it('the same process (same pid) runs with the defaults it lacked', { timeout: 60_000 }, async () => {
    const p = await bed.start({ ...bed.env(), PALISADE_LOG_LEVEL: 'info' });
    const pid = p.child.pid!;
    const args = cmdline(pid);
    for (const f of sidecarNodeFlags(memoryForHeap())) expect(args).toContain(f);
    expect(args.at(-1)).toBe('sidecar');
    expect(args.at(-2)).toMatch(/src\/cli\/main\.ts$/);
    for (const [k, v] of Object.entries(SIDECAR_ENV)) expect(environ(pid)).toContain(`${k}=${v}`);
    p.child.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
  });

  it('a value the user gave (NODE_OPTIONS, the environment) is kept, not overridden', { timeout: 60_000 }, async () => {
    const p = await bed.start({ ...bed.env(), PALISADE_LOG_LEVEL: 'info', NODE_OPTIONS: '--max-semi-space-size=8', MALLOC_ARENA_MAX: '4' });
    const pid = p.child.pid!;
    expect(cmdline(pid).filter((a) => a.startsWith('--max-semi-space-size'))).toEqual([]);
    expect(environ(pid)).toContain('NODE_OPTIONS=--max-semi-space-size=8');
    expect(environ(pid)).toContain('MALLOC_ARENA_MAX=4');
    p.child.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
  });
});
