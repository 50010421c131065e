/** `palisade demo [--once] [--dir D] [--port P] [--admin-port P] [--service-port P]` */
import { runDemo } from '../../demo/run.ts';
import { parseFlags } from '../args.ts';

export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags(
    argv,
    {
      once: { type: 'boolean', default: false },
      dir: { type: 'string', default: '.run/demo' },
      port: { type: 'string', default: '8443' },
      'admin-port': { type: 'string', default: '9901' },
      'service-port': { type: 'string', default: '8081' },
      'block-seconds': { type: 'string', default: '30' },
    },
    'palisade demo',
  );
  const demo = await runDemo({
    dir: values.dir,
    port: Number(values.port),
    adminPort: Number(values['admin-port']),
    servicePort: Number(values['service-port']),
    once: values.once,
    blockSeconds: Number(values['block-seconds']),
    out: (line) => process.stdout.write(line + '\n'),
  });
  if (values.once) {
    await demo.close();
    return 0;
  }
  process.stdout.write('\nrunning; Ctrl-C to stop.\n');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await demo.close();
  return 0;
}
