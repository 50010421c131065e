// The `palisade` entry point: help, version, unknown commands, exit codes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { palisade } from './support/run.ts';

const VERSION = (JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;

describe('palisade', () => {
  it('--help and -h list the commands and the exit codes, exit 0', async () => {
    for (const flag of ['--help', '-h', 'help']) {
      const r = await palisade([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^usage: palisade <command> \[options\]/);
      expect(r.stdout).toMatch(/^ {2}blocklist +/m);
      expect(r.stdout).toContain('Exit codes: 0 done, 1 the command failed, 2 the command line is wrong.');
      expect(r.stderr).toBe('');
    }
  });

  it('no command is a usage error: usage on stderr, exit 2', async () => {
    const r = await palisade([]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^usage: palisade/);
  });

  it('an unknown command is a usage error, exit 2', async () => {
    const r = await palisade(['blocklists']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^palisade: unknown command "blocklists"/);
  });

  it('--version and version print the package version', async () => {
    const a = await palisade(['--version']);
    expect(a.code).toBe(0);
    expect(a.stdout).toBe(`palisade ${VERSION} (node ${process.versions.node})\n`);
    const b = await palisade(['version', '-o', 'json']);
    expect(b.code).toBe(0);
    expect(JSON.parse(b.stdout)).toEqual({ version: VERSION, node: process.versions.node });
    const c = await palisade(['version', 'extra']);
    expect(c.code).toBe(2);
    expect(c.stderr).toBe('palisade version: takes no arguments; unexpected "extra"\nRun "palisade version --help" for usage.\n');
  });
});
