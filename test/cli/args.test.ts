// The shared command-line conventions (src/cli/args.ts): help before parsing, strict flags and
// positionals as usage errors, -o json|yaml with --json as its alias.
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { CliExit, dispatch, formatOutput, formatTable, helpText, parseCommand, UsageError, type CommandSpec } from '../../src/cli/args.ts';

const spec = {
  name: 'palisade thing',
  usage: 'usage: palisade thing FILE [--count N]\n',
  options: { count: { type: 'string' }, force: { type: 'boolean' } },
  positionals: { min: 1, max: 1, name: 'FILE' },
  output: true,
} as const satisfies CommandSpec<{ count: { type: 'string' }; force: { type: 'boolean' } }>;

function usageError(fn: () => unknown): UsageError {
  try {
    fn();
  } catch (err) {
    if (err instanceof UsageError) return err;
    throw err;
  }
  throw new Error('no usage error');
}

describe('parseCommand', () => {
  it('parses flags, positionals and the output format', () => {
    const r = parseCommand(['a.yaml', '--count', '3', '-o', 'yaml'], spec);
    expect(r.positionals).toEqual(['a.yaml']);
    expect(r.values.count).toBe('3');
    expect(r.output).toBe('yaml');
    expect(parseCommand(['a.yaml'], spec).output).toBe('text');
    expect(parseCommand(['a.yaml', '--json'], spec).output).toBe('json');
    expect(parseCommand(['a.yaml', '--output=json'], spec).output).toBe('json');
  });

  it('answers -h and --help with the help text, before reading anything else', () => {
    for (const argv of [['--help'], ['-h'], ['--bogus', '--help'], ['x', 'y', 'z', '-h']]) {
      let caught: unknown;
      try {
        parseCommand(argv, spec);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(CliExit);
      expect((caught as CliExit).code).toBe(0);
      expect((caught as CliExit).stdout).toBe(helpText(spec));
      expect((caught as CliExit).stdout).toContain('-o, --output FORMAT');
    }
    // After "--", -h is an argument.
    expect(parseCommand(['--', '-h'], spec).positionals).toEqual(['-h']);
  });

  it('refuses unknown flags, missing values, extra or missing arguments and unknown formats', () => {
    expect(usageError(() => parseCommand(['a', '--bogus'], spec)).message).toBe('unknown flag --bogus');
    expect(usageError(() => parseCommand(['a', '--count'], spec)).message).toBe('--count needs a value');
    expect(usageError(() => parseCommand(['a', '--force=yes'], spec)).message).toBe('--force takes no value');
    expect(usageError(() => parseCommand(['a', 'minutes'], spec)).message).toBe('unexpected argument "minutes" (at most 1 FILE)');
    expect(usageError(() => parseCommand([], spec)).message).toBe('missing FILE');
    expect(usageError(() => parseCommand(['a', '-o', 'table'], spec)).message).toBe('-o "table": use json, yaml or text');
    expect(usageError(() => parseCommand(['a', '--json', '-o', 'yaml'], spec)).message).toBe('--json contradicts -o yaml');
    const none = { name: 'palisade x', usage: 'usage: palisade x\n', options: {} };
    expect(usageError(() => parseCommand(['10', 'minutes'], none)).message).toBe('takes no arguments; unexpected "10" "minutes"');
    expect(usageError(() => parseCommand(['a', 'b'], spec)).command).toBe('palisade thing');
  });

  it('has no -o without output', () => {
    expect(usageError(() => parseCommand(['-o', 'json'], { name: 'palisade x', usage: 'usage: palisade x\n', options: {} })).message).toBe('unknown flag -o');
  });
});

describe('dispatch', () => {
  const subs = { list: { summary: 'list them', run: async (argv: string[]) => argv.length } };
  it('runs the subcommand with the rest of the line', async () => {
    expect(await dispatch('palisade g', ['list', 'a', 'b'], subs)).toBe(2);
  });
  it('lists the subcommands on --help, and refuses none or an unknown one', async () => {
    await expect(dispatch('palisade g', ['--help'], subs)).rejects.toMatchObject({ code: 0, stdout: expect.stringContaining('  list  list them') });
    await expect(dispatch('palisade g', [], subs)).rejects.toBeInstanceOf(UsageError);
    await expect(dispatch('palisade g', ['toString'], subs)).rejects.toThrow('unknown subcommand "toString"; use list');
  });
});

describe('output', () => {
  const value = { kind: 'ip', value: '203.0.113.7', expiresAt: null };
  it('prints JSON, YAML or the text rendering', () => {
    expect(JSON.parse(formatOutput('json', value, () => 'x'))).toEqual(value);
    expect(parseYaml(formatOutput('yaml', value, () => 'x'))).toEqual(value);
    expect(formatOutput('text', value, () => 'one line')).toBe('one line\n');
  });
  it('pads table columns, not the last one', () => {
    expect(formatTable(['KIND', 'VALUE', 'REASON'], [['ip', '203.0.113.7', 'x'], ['spiffeId', 'a', 'long reason']])).toBe(
      'KIND      VALUE        REASON\nip        203.0.113.7  x\nspiffeId  a            long reason\n',
    );
  });
});
