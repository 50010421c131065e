/**
 * The `palisade` command: one entry point, subcommands in ./commands/, each
 * loaded only when used so `palisade policy check` does not pay for Kafka.
 */
import { PalisadeError } from '../errors/codes.ts';

type Command = { readonly summary: string; readonly load: () => Promise<{ run(argv: string[]): Promise<number> }> };

const COMMANDS: Record<string, Command> = {
  sidecar: { summary: 'run the sidecar (settings from PALISADE_* variables; see README)', load: () => import('./commands/sidecar.ts') },
  policy: { summary: 'policy check FILE | explain FILE --method M --path P [...] | diff OLD NEW --decisions FILE', load: () => import('./commands/policy.ts') },
  demo: { summary: 'start the whole system on this machine with a dev CA, sample service and policy', load: () => import('./commands/demo.ts') },
  settings: { summary: 'print the settings table (--markdown) or the effective settings', load: () => import('./commands/settings.ts') },
  inject: { summary: 'add the sidecar to Kubernetes YAML (files or stdin) like linkerd inject', load: () => import('./commands/inject.ts') },
  webhook: { summary: 'run the sidecar-injection admission webhook (HTTPS, AdmissionReview v1)', load: () => import('./commands/webhook.ts') },
  detector: { summary: 'run the anomaly detector on the decisions topic (Kafka); alerts, blocks, /metrics on :9902', load: () => import('./commands/detector.ts') },
  blocklist: { summary: 'blocklist list | add TARGET --reason R [--ttl D] | remove TARGET (the Kafka block list every sidecar follows)', load: () => import('./commands/blocklist.ts') },
  alerts: { summary: 'alerts tail [--from-beginning] [--json]: the detector\'s alerts as they arrive', load: () => import('./commands/alerts.ts') },
};

function usage(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return `usage: palisade <command> [options]\n\ncommands:\n${Object.entries(COMMANDS)
    .map(([k, c]) => `  ${k.padEnd(w)}  ${c.summary}`)
    .join('\n')}\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`palisade: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  const mod = await cmd.load();
  return mod.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof PalisadeError) process.stderr.write(`palisade: ${err.code}: ${err.message}\n`);
    else process.stderr.write(`palisade: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
