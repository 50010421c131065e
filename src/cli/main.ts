/**
 * The `palisade` command: one entry point, subcommands in ./commands/, each
 * loaded only when used so `palisade policy check` does not pay for Kafka.
 *
 * Exit codes: 0 done, 1 the command ran and failed, 2 the command line is
 * wrong (see ./args.ts and the README's "The palisade command").
 */
import { readFileSync } from 'node:fs';
import { PalisadeError } from '../errors/codes.ts';
import { CliExit, CommandFailed, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError } from './args.ts';

type Command = { readonly summary: string; readonly load: () => Promise<{ run(argv: string[]): Promise<number> }> };

const COMMANDS: Record<string, Command> = {
  sidecar: { summary: 'run the sidecar (settings from PALISADE_* variables; see README)', load: () => import('./commands/sidecar.ts') },
  policy: { summary: 'policy check FILE... | explain FILE --path P [...] | test POLICY TESTFILE... | diff OLD NEW --decisions FILE', load: () => import('./commands/policy.ts') },
  demo: { summary: 'start the whole system on this machine with a dev CA, sample service and policy', load: () => import('./commands/demo.ts') },
  settings: { summary: 'the PALISADE_* settings in effect and where each came from (--markdown: the reference table)', load: () => import('./commands/settings.ts') },
  inject: { summary: 'add the sidecar to Kubernetes YAML (files or stdin) like linkerd inject', load: () => import('./commands/inject.ts') },
  webhook: { summary: 'run the sidecar-injection admission webhook (HTTPS, AdmissionReview v1)', load: () => import('./commands/webhook.ts') },
  detector: { summary: 'run the anomaly detector on the decisions topic (Kafka); alerts, blocks, /metrics on :9902', load: () => import('./commands/detector.ts') },
  fleet: { summary: 'fleet status: which workloads run which policy (drift, stale sidecars, refusals) from the sidecars\' status records', load: () => import('./commands/fleet.ts') },
  blocklist: { summary: 'blocklist list | add TARGET --reason R [--ttl D] | remove TARGET | remove --source/--since/--rule --reason R (the Kafka block list every sidecar follows)', load: () => import('./commands/blocklist.ts') },
  alerts: { summary: 'alerts tail [--from-beginning] [-o json]: the detector\'s alerts as they arrive', load: () => import('./commands/alerts.ts') },
  version: { summary: 'print the version (also: palisade --version)', load: async () => ({ run: versionCommand }) },
};

function usage(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return (
    `usage: palisade <command> [options]\n\ncommands:\n${Object.entries(COMMANDS)
      .map(([k, c]) => `  ${k.padEnd(w)}  ${c.summary}`)
      .join('\n')}\n\n` +
    'Run "palisade <command> --help" for a command\'s options.\n' +
    'Exit codes: 0 done, 1 the command failed, 2 the command line is wrong.\n'
  );
}

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function versionCommand(argv: string[]): Promise<number> {
  const { parseCommand, formatOutput } = await import('./args.ts');
  const { output } = parseCommand(argv, { name: 'palisade version', usage: 'usage: palisade version [-o json|yaml]\n\nThe version of palisade and of the Node.js runtime.\n', options: {}, output: true });
  const record = { version: version(), node: process.versions.node };
  process.stdout.write(formatOutput(output, record, () => `palisade ${record.version} (node ${record.node})`));
  return EXIT_OK;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name) {
    process.stderr.write(usage());
    return EXIT_USAGE;
  }
  if (name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(usage());
    return EXIT_OK;
  }
  if (name === '--version') return versionCommand(rest);
  const cmd = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!cmd) {
    process.stderr.write(`palisade: unknown command "${name}"\n\n${usage()}`);
    return EXIT_USAGE;
  }
  // The sidecar's measured Node/V8 settings, before it loads anything else (node-flags.ts).
  if (name === 'sidecar') (await import('./node-flags.ts')).ensureNodeFlags();
  const mod = await cmd.load();
  return mod.run(rest);
}

/** A file or listen error of the system, as one line (its stack says nothing to the user). */
function systemErrorLine(err: unknown): string | null {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (typeof e?.code !== 'string' || typeof e.syscall !== 'string') return null;
  if (e.syscall === 'listen') return `cannot listen on ${e.address ?? '?'}:${e.port ?? '?'}: ${e.code === 'EADDRINUSE' ? 'the port is already in use' : e.code}; stop what uses it or choose another port`;
  if (typeof e.path === 'string') return `cannot ${e.syscall} ${e.path}: ${e.code}`;
  return null;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof CliExit) {
      process.stdout.write(err.stdout);
      process.exitCode = err.code;
    } else if (err instanceof UsageError) {
      process.stderr.write(`${err.command}: ${err.message}\nRun "${err.command} --help" for usage.\n`);
      process.exitCode = EXIT_USAGE;
    } else if (err instanceof CommandFailed) {
      process.stderr.write(`${err.command}: ${err.message}\n`);
      process.exitCode = EXIT_FAILURE;
    } else if (err instanceof PalisadeError) {
      process.stderr.write(`palisade: ${err.code}: ${err.message}\n`);
      process.exitCode = EXIT_FAILURE;
    } else if (systemErrorLine(err)) {
      process.stderr.write(`palisade: ${systemErrorLine(err)}\n`);
      process.exitCode = EXIT_FAILURE;
    } else {
      process.stderr.write(`palisade: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = EXIT_FAILURE;
    }
    // A command that failed ends here, even if something it started still holds the event loop
    // (a listener opened before the failure): a failed start must not hang.
    if (process.exitCode === EXIT_FAILURE) process.exit(EXIT_FAILURE);
  },
);
