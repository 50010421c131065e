/** `palisade sidecar`: runs the sidecar until SIGTERM/SIGINT, then drains. */
import { loadSettings } from '../../config/settings.ts';
import { createLogger } from '../../log/logger.ts';
import { composeSidecar } from '../../sidecar/compose.ts';
import { parseFlags } from '../args.ts';
import { runUntilSignal } from '../shutdown.ts';

export async function run(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, { policy: { type: 'string' }, upstream: { type: 'string' }, port: { type: 'string' }, 'admin-port': { type: 'string' } }, 'palisade sidecar');
  const settings = loadSettings(process.env, {
    policyFile: values.policy,
    upstream: values.upstream,
    listenPort: values.port,
    adminPort: values['admin-port'],
  });
  const logger = createLogger({ level: settings.logLevel });
  const sidecar = await composeSidecar({ settings, logger });
  await runUntilSignal({ logger, graceMs: settings.shutdownGraceMs, message: 'shutting down: draining requests and decisions', close: () => sidecar.close() });
  logger.flush();
  return 0;
}
