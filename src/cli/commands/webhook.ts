/**
 * `palisade webhook`: the mutating admission webhook that injects the sidecar
 * into pods that opt in (label or annotation palisade.dev/inject: enabled).
 * Settings: PALISADE_WEBHOOK_* (server) and PALISADE_INJECT_* (what to inject);
 * see docs/deploy.md. Runs until SIGTERM/SIGINT, then fails /readyz, keeps
 * answering for PALISADE_WEBHOOK_DRAIN_DELAY_MS, closes and exits 0.
 */
import { loadWebhookSettings, webhookSettingsTable } from '../../config/webhook-settings.ts';
import { InjectError } from '../../deploy/inject/errors.ts';
import { injectOptionsFromEnv, injectOptionsTable } from '../../deploy/inject/options.ts';
import { startWebhookServer } from '../../deploy/webhook/server.ts';
import { PalisadeError } from '../../errors/codes.ts';
import { createLogger } from '../../log/logger.ts';
import { CliExit, CommandFailed, EXIT_OK, listenFailure, parseCommand } from '../args.ts';

const USAGE = `usage: palisade webhook [--host H] [--port N] [--tls-cert FILE] [--tls-key FILE]

Serves the sidecar-injection admission webhook (POST /inject, AdmissionReview v1)
over HTTPS, plus /livez and /readyz. Flags override the variables below.

Options:
      --host H              listen address (PALISADE_WEBHOOK_HOST)
      --port N              HTTPS port (PALISADE_WEBHOOK_PORT)
      --tls-cert FILE       serving certificate chain, PEM (PALISADE_WEBHOOK_TLS_CERT)
      --tls-key FILE        serving private key, PEM (PALISADE_WEBHOOK_TLS_KEY)
`;

export async function run(argv: string[]): Promise<number> {
  // The help lists the variables too: -h is answered here rather than by parseCommand.
  let values;
  try {
    values = parseCommand(argv, {
      name: 'palisade webhook',
      usage: USAGE,
      options: { host: { type: 'string' }, port: { type: 'string' }, 'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' } },
    }).values;
  } catch (err) {
    if (err instanceof CliExit && err.code === EXIT_OK) throw new CliExit(EXIT_OK, `${err.stdout}\nServer:\n${webhookSettingsTable()}\n\nInjection:\n${injectOptionsTable()}\n`);
    throw err;
  }
  let settings;
  let opts;
  try {
    settings = loadWebhookSettings(process.env, { host: values['host'], port: values['port'], tlsCert: values['tls-cert'], tlsKey: values['tls-key'] });
    opts = injectOptionsFromEnv(process.env);
  } catch (err) {
    // A bad setting (a PALISADE_* variable or a flag's value): one line naming it, exit 1.
    if (err instanceof PalisadeError || err instanceof InjectError) throw new CommandFailed('palisade webhook', err.message);
    throw err;
  }
  const log = createLogger({ level: settings.logLevel, name: 'palisade-webhook' });
  let server;
  try {
    server = await startWebhookServer(settings, opts, log);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const file = e.path === settings.tlsCert ? ['serving certificate', 'PALISADE_WEBHOOK_TLS_CERT', '--tls-cert'] : e.path === settings.tlsKey ? ['serving key', 'PALISADE_WEBHOOK_TLS_KEY', '--tls-key'] : null;
    if (file && e.code) throw new CommandFailed('palisade webhook', `cannot read the ${file[0]} ${e.path} (${e.code}); set ${file[1]} or ${file[2]} FILE`);
    throw listenFailure('palisade webhook', err, [{ port: settings.port, setting: 'PALISADE_WEBHOOK_PORT', flag: '--port' }]) ?? err;
  }
  log.info({ port: server.port, mode: opts.mode, image: opts.image, certSource: opts.certSource }, 'webhook listening');

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'webhook shutting down');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  // Endpoints are removed while we keep serving: no review lands on a closed port.
  server.drain();
  await new Promise((r) => setTimeout(r, settings.drainDelayMs));
  await server.close();
  log.flush();
  return EXIT_OK;
}
