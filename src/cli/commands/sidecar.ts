/** `palisade sidecar`: runs the sidecar until SIGTERM/SIGINT, then drains. */
import { loadSettings } from '../../config/settings.ts';
import { createLogger } from '../../log/logger.ts';
import { composeSidecar } from '../../sidecar/compose.ts';
import { CommandFailed, EXIT_OK, listenFailure, parseCommand } from '../args.ts';
import { releaseMemory } from '../../util/release-memory.ts';
import { runUntilSignal } from '../shutdown.ts';

const USAGE = `usage: palisade sidecar [--policy FILE] [--upstream URL] [--port N] [--admin-port N]

Runs the sidecar in front of one service until SIGTERM/SIGINT, then drains in-flight requests and
flushes decisions. Settings come from the PALISADE_* variables (README, "Settings"; palisade
settings sidecar shows them with their sources); these flags override four of them.

Options:
      --policy FILE         the policy file (PALISADE_POLICY)
      --upstream URL        the protected service, http://host:port (PALISADE_UPSTREAM)
      --port N              mTLS listener port (PALISADE_LISTEN_PORT)
      --admin-port N        admin listener port, /livez /readyz /metrics (PALISADE_ADMIN_PORT)
`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommand(argv, {
    name: 'palisade sidecar',
    usage: USAGE,
    options: { policy: { type: 'string' }, upstream: { type: 'string' }, port: { type: 'string' }, 'admin-port': { type: 'string' } },
  });
  const settings = loadSettings(process.env, {
    policyFile: values.policy,
    upstream: values.upstream,
    listenPort: values.port,
    adminPort: values['admin-port'],
  });
  const logger = createLogger({ level: settings.logLevel });
  let sidecar;
  try {
    sidecar = await composeSidecar({ settings, logger });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const files: Record<string, string> = { [settings.tlsCert]: 'PALISADE_TLS_CERT', [settings.tlsKey]: 'PALISADE_TLS_KEY', [settings.tlsCa]: 'PALISADE_TLS_CA' };
    if (e.code && typeof e.path === 'string' && Object.hasOwn(files, e.path)) throw new CommandFailed('palisade sidecar', `cannot read ${e.path} (${e.code}), set by ${files[e.path]}`);
    throw (
      listenFailure('palisade sidecar', err, [
        { port: settings.listenPort, setting: 'PALISADE_LISTEN_PORT', flag: '--port' },
        { port: settings.adminPort, setting: 'PALISADE_ADMIN_PORT', flag: '--admin-port' },
        { port: settings.plaintextPort, setting: 'PALISADE_PLAINTEXT_PORT' },
      ]) ?? err
    );
  }
  // Startup's garbage (module loading, the policy's compilation, TLS setup) is dead once the
  // listeners are up: release the pages V8 would otherwise keep (src/util/release-memory.ts).
  releaseMemory();
  await runUntilSignal({ logger, graceMs: settings.shutdownGraceMs, message: 'shutting down: draining requests and decisions', close: () => sidecar.close() });
  logger.flush();
  return EXIT_OK;
}
