/** `palisade sidecar`: runs the sidecar until SIGTERM/SIGINT, then drains. */
import { loadSettings } from '../../config/settings.ts';
import { createLogger } from '../../log/logger.ts';
import { composeSidecar } from '../../sidecar/compose.ts';
import { parseFlags } from '../args.ts';

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
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, 'shutting down: draining requests and decisions');
      const timer = setTimeout(() => {
        logger.error('shutdown grace period over; exiting');
        process.exit(1);
      }, settings.shutdownGraceMs);
      timer.unref();
      sidecar.close().then(resolve, (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        resolve();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  logger.flush();
  return 0;
}
