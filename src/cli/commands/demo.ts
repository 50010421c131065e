/** `palisade demo`: the whole system on this machine (see src/demo/run.ts). */
import { DemoPortError } from '../../demo/cli-output.ts';
import { runDemo } from '../../demo/run.ts';
import { CommandFailed, EXIT_OK, parseCommand, UsageError } from '../args.ts';

const NAME = 'palisade demo';

const USAGE = `usage: ${NAME} [--once] [--dir DIR] [--port N] [--admin-port N] [--service-port N] [--block-seconds S] [--keep-policy]

Starts the whole system on this machine, nothing else installed: a development CA and
certificates, the sample orders service, the sample policy, the sidecar in front of it and the
detector in-process; then sends scripted requests and shows what was allowed or denied and why.
Edits to DIR/policy.yaml apply while it runs, each reported as a line. Ctrl-C stops it.

Options:
      --once                exit after the scripted part (and the demo block's expiry)
      --dir DIR             where certificates, the policy copy and decisions go (default .run/demo)
      --port N              the sidecar's mTLS port (default 8443)
      --admin-port N        the sidecar's admin port, /livez /readyz /metrics (default 9901)
      --service-port N      the orders service's port (default 8081)
      --block-seconds S     how long the detector blocks the flooding client, seconds (default 30)
      --keep-policy         run DIR/policy.yaml as you edited it; without it an edited copy is
                            kept aside (and the run says where) and the shipped policy is used
`;

function port(text: string, flag: string): number {
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 0 && n <= 65535)) throw new UsageError(NAME, `${flag} "${text}": give a port number, 0-65535`);
  return n;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    name: NAME,
    usage: USAGE,
    options: {
      once: { type: 'boolean', default: false },
      dir: { type: 'string', default: '.run/demo' },
      port: { type: 'string', default: '8443' },
      'admin-port': { type: 'string', default: '9901' },
      'service-port': { type: 'string', default: '8081' },
      'block-seconds': { type: 'string', default: '30' },
      'keep-policy': { type: 'boolean', default: false },
    },
  });
  const blockSeconds = Number(values['block-seconds']);
  if (!/^\d+$/.test(values['block-seconds']) || !(blockSeconds >= 1)) throw new UsageError(NAME, `--block-seconds "${values['block-seconds']}": give whole seconds, 1 or more`);
  const options = {
    dir: values.dir,
    port: port(values.port, '--port'),
    adminPort: port(values['admin-port'], '--admin-port'),
    servicePort: port(values['service-port'], '--service-port'),
    once: values.once,
    blockSeconds,
    keepPolicy: values['keep-policy'],
    out: (line: string) => process.stdout.write(line + '\n'),
  };
  let demo;
  try {
    demo = await runDemo(options);
  } catch (err) {
    if (err instanceof DemoPortError) throw new CommandFailed(NAME, err.message);
    // Taken between the check and the listen: the same line, and nothing left running.
    const e = err as NodeJS.ErrnoException & { port?: number };
    if (e.code === 'EADDRINUSE') {
      const flag = e.port === options.adminPort ? '--admin-port' : e.port === options.servicePort ? '--service-port' : '--port';
      process.stderr.write(`${NAME}: port ${e.port ?? '?'} is already in use on 127.0.0.1; choose another port with ${flag} N\n`);
      process.exit(1);
    }
    throw err;
  }
  if (values.once) {
    await demo.close();
    return EXIT_OK;
  }
  process.stdout.write('\nrunning; Ctrl-C to stop.\n');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await demo.close();
  return EXIT_OK;
}
