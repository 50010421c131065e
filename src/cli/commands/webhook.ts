/**
 * `palisade webhook`: the mutating admission webhook that injects the sidecar
 * into pods that opt in (label or annotation palisade.dev/inject: enabled).
 * Settings: PALISADE_WEBHOOK_* (server) and PALISADE_INJECT_* (what to inject);
 * see docs/deploy.md. Runs until SIGTERM/SIGINT, then fails /readyz, keeps
 * answering for PALISADE_WEBHOOK_DRAIN_DELAY_MS, closes and exits 0.
 */
import { parseArgs } from 'node:util';
import { loadWebhookSettings, webhookSettingsTable } from '../../config/webhook-settings.ts';
import { InjectError } from '../../deploy/inject/errors.ts';
import { injectOptionsFromEnv, injectOptionsTable } from '../../deploy/inject/options.ts';
import { startWebhookServer } from '../../deploy/webhook/server.ts';
import { PalisadeError } from '../../errors/codes.ts';
import { createLogger } from '../../log/logger.ts';

const USAGE = `usage: palisade webhook [--host H] [--port N] [--tls-cert FILE] [--tls-key FILE]

Serves the sidecar-injection admission webhook (POST /inject, AdmissionReview v1)
over HTTPS, plus /livez and /readyz. Flags override the variables below.
`;

export async function run(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      options: { host: { type: 'string' }, port: { type: 'string' }, 'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`palisade webhook: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values['help']) {
    process.stdout.write(`${USAGE}\nServer:\n${webhookSettingsTable()}\n\nInjection:\n${injectOptionsTable()}\n`);
    return 0;
  }
  let settings;
  let opts;
  try {
    settings = loadWebhookSettings(process.env, { host: values['host'], port: values['port'], tlsCert: values['tls-cert'], tlsKey: values['tls-key'] });
    opts = injectOptionsFromEnv(process.env);
  } catch (err) {
    if (err instanceof PalisadeError || err instanceof InjectError) {
      process.stderr.write(`palisade webhook: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const log = createLogger({ level: settings.logLevel, name: 'palisade-webhook' });
  const server = await startWebhookServer(settings, opts, log);
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
  return 0;
}
