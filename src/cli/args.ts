/**
 * The command-line conventions every `palisade` command shares, in one place:
 *
 * - `-h` / `--help` anywhere before `--` prints the command's usage on stdout, exit 0
 *   (checked before parsing, so `palisade policy check --help` never reads a file named `--help`);
 * - unknown flags, missing values and extra positional arguments are usage errors: one line
 *   naming the problem and how to get help, on stderr, exit 2;
 * - `-o json|yaml` (kubectl's convention; `--json` stays as an alias of `-o json`) on commands
 *   that print a table or a record.
 *
 * Exit codes (README, "The palisade command"): 0 done, 1 the command ran and failed
 * (unreadable file, refused policy, Kafka unreachable, nothing to remove...), 2 the command line
 * is wrong. Commands throw UsageError / CliExit; src/cli/main.ts turns them into output and codes.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { stringify as toYaml } from 'yaml';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

type Options = NonNullable<ParseArgsConfig['options']>;

/** The command line is wrong: main.ts prints `<command>: <message>` and a pointer to --help, exit 2. */
export class UsageError extends Error {
  readonly command: string;
  constructor(command: string, message: string) {
    super(message);
    this.name = 'UsageError';
    this.command = command;
  }
}

/** Stop now with this exit code, after printing `stdout` (help text, for example). */
export class CliExit extends Error {
  readonly code: number;
  readonly stdout: string;
  constructor(code: number, stdout = '') {
    super(`exit ${code}`);
    this.name = 'CliExit';
    this.code = code;
    this.stdout = stdout;
  }
}

/** The command ran and failed: main.ts prints `<command>: <message>` (one line, no stack), exit 1. */
export class CommandFailed extends Error {
  readonly command: string;
  constructor(command: string, message: string) {
    super(message);
    this.name = 'CommandFailed';
    this.command = command;
  }
}

/** A port a command listens on, and how the user changes it. */
export interface ListenPort {
  readonly port: number;
  /** The PALISADE_* variable. */
  readonly setting: string;
  /** The command's flag, when it has one. */
  readonly flag?: string;
}

/**
 * A listen error (port in use, or not allowed) as one CommandFailed line naming the address, the
 * setting and the flag that change it; null for any other error.
 */
export function listenFailure(command: string, err: unknown, ports: readonly ListenPort[]): CommandFailed | null {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (e?.syscall !== 'listen' || (e.code !== 'EADDRINUSE' && e.code !== 'EACCES')) return null;
  const p = ports.find((x) => x.port === e.port);
  const how = p ? `${p.flag ? `${p.flag} N or ` : ''}${p.setting}` : 'its port setting';
  const what = e.code === 'EADDRINUSE' ? 'is already in use' : 'may not be used by this user';
  return new CommandFailed(command, `cannot listen on ${e.address ?? '?'}:${e.port ?? '?'}: the port ${what}; stop what uses it or choose another port with ${how}`);
}

export type OutputFormat = 'text' | 'json' | 'yaml';

export interface CommandSpec<O extends Options> {
  /** As the user types it: "palisade blocklist add". */
  readonly name: string;
  /** The help text: a `usage:` line, what the command does, its own options. Common options are appended. */
  readonly usage: string;
  readonly options: O;
  /** Positional arguments allowed (default none). `name` is how the usage calls them, for errors. */
  readonly positionals?: { readonly min?: number; readonly max?: number; readonly name?: string };
  /** The command prints a table or a record: accept `-o json|yaml` and `--json`. */
  readonly output?: boolean;
}

const OUTPUT_OPTIONS = {
  output: { type: 'string', short: 'o' },
  json: { type: 'boolean' },
} as const satisfies Options;

// Option lines: flags from column 2 (a short flag) or 6, descriptions from column 28.
const OUTPUT_HELP = '  -o, --output FORMAT       text (default), json or yaml; --json is the same as -o json\n';
const HELP_HELP = '  -h, --help                this help\n';

/** The full help text of a command: its usage, then the options every command shares. */
export function helpText(spec: Pick<CommandSpec<Options>, 'usage' | 'output'>): string {
  const body = spec.usage.endsWith('\n') ? spec.usage : `${spec.usage}\n`;
  return `${body}${spec.output ? OUTPUT_HELP : ''}${HELP_HELP}`;
}

/** True when -h/--help comes before any `--`. */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (a === '-h' || a === '--help') return true;
  }
  return false;
}

/**
 * Parses a command line strictly; on -h/--help throws CliExit(0) with the help text, on any
 * problem throws UsageError. Values keep parseArgs's types; `output` is the chosen format.
 */
export function parseCommand<O extends Options>(argv: readonly string[], spec: CommandSpec<O>) {
  if (wantsHelp(argv)) throw new CliExit(EXIT_OK, helpText(spec));
  const options = (spec.output ? { ...spec.options, ...OUTPUT_OPTIONS } : spec.options) as O;
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(spec.name, friendlyParseError(err as Error));
  }
  const { min = 0, max = 0, name = 'argument' } = spec.positionals ?? {};
  const pos = parsed.positionals;
  if (pos.length > max) {
    const extra = pos.slice(max).map((p) => `"${p}"`).join(' ');
    throw new UsageError(spec.name, max === 0 ? `takes no arguments; unexpected ${extra}` : `unexpected argument${pos.length - max > 1 ? 's' : ''} ${extra} (at most ${max} ${name})`);
  }
  if (pos.length < min) throw new UsageError(spec.name, `missing ${name}`);
  let output: OutputFormat = 'text';
  if (spec.output) {
    const v = parsed.values as Record<string, unknown>;
    const o = v['output'] as string | undefined;
    if (o !== undefined && o !== 'json' && o !== 'yaml' && o !== 'text') throw new UsageError(spec.name, `-o "${o}": use json, yaml or text`);
    if (v['json'] === true && o !== undefined && o !== 'json') throw new UsageError(spec.name, `--json contradicts -o ${o}`);
    output = v['json'] === true ? 'json' : ((o as OutputFormat | undefined) ?? 'text');
  }
  return { values: parsed.values, positionals: pos, output };
}

/** node:util's messages, shortened to what the user typed wrong. */
export function friendlyParseError(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  // node:util quotes the flag as '--x', '-o, --output <value>' or '--count <value>'.
  const quoted = /'(-[^']*)'/.exec(err.message)?.[1];
  const flags = quoted?.split(/[ ,]+/).filter((w) => w.startsWith('-')) ?? [];
  const flag = flags[flags.length - 1];
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && flag) return `unknown flag ${flag}`;
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && flag) return /argument missing/.test(err.message) ? `${flag} needs a value` : `${flag} takes no value`;
  return err.message.split('\n')[0] ?? err.message;
}

export interface Subcommand {
  readonly summary: string;
  run(argv: string[]): Promise<number>;
}

/**
 * `palisade <group> <sub> ...`: runs the subcommand; `palisade <group>` alone or an unknown
 * subcommand is a usage error; `palisade <group> --help` lists the subcommands.
 */
export async function dispatch(group: string, argv: string[], subs: Readonly<Record<string, Subcommand>>): Promise<number> {
  const [sub, ...rest] = argv;
  const w = Math.max(...Object.keys(subs).map((k) => k.length));
  const list = Object.entries(subs)
    .map(([k, s]) => `  ${k.padEnd(w)}  ${s.summary}`)
    .join('\n');
  const usage = `usage: ${group} <subcommand> [options]\n\nsubcommands:\n${list}\n\nRun "${group} <subcommand> --help" for its options.\n`;
  if (sub === undefined) throw new UsageError(group, `name a subcommand: ${Object.keys(subs).join(', ')}`);
  if (sub === '-h' || sub === '--help' || sub === 'help') throw new CliExit(EXIT_OK, usage);
  const s = Object.hasOwn(subs, sub) ? subs[sub] : undefined;
  if (!s) throw new UsageError(group, `unknown subcommand "${sub}"; use ${Object.keys(subs).join(', ')}`);
  return s.run(rest);
}

/** A value as JSON or YAML, or its text rendering. Ends with a newline. */
export function formatOutput(format: OutputFormat, value: unknown, text: () => string): string {
  if (format === 'json') return `${JSON.stringify(value, null, 2)}\n`;
  if (format === 'yaml') return toYaml(value, { lineWidth: 0 });
  const t = text();
  return t.endsWith('\n') || t === '' ? t : `${t}\n`;
}

/** Columns padded to the widest cell (capped at `maxWidth`); the last column is not padded. */
export function formatTable(head: readonly string[], rows: readonly (readonly string[])[], maxWidth = 60): string {
  const widths = head.map((h, i) => Math.min(maxWidth, Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length))));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}
