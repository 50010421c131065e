/**
 * Process settings of `palisade webhook`, the mutating admission webhook that
 * injects the sidecar. Read from PALISADE_WEBHOOK_* variables (flags override),
 * validated by ajv with defaults. What the webhook injects is configured by the
 * PALISADE_INJECT_* variables of src/deploy/inject/options.ts.
 */
import { PalisadeError } from '../errors/codes.ts';
import { createAjv, describeAjvErrors } from '../util/ajv.ts';
import { deepFreeze } from '../util/freeze.ts';
import { envSpecsTable, readEnvSpecs, schemaOfSpecs } from './spec-schema.ts';

interface SettingSpec {
  readonly env: string;
  readonly type: 'string' | 'integer';
  readonly default: string | number;
  readonly description: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly enum?: readonly string[];
}

export const WEBHOOK_SETTINGS = {
  host: { env: 'PALISADE_WEBHOOK_HOST', type: 'string', default: '0.0.0.0', description: 'Address the webhook listens on.' },
  port: { env: 'PALISADE_WEBHOOK_PORT', type: 'integer', default: 9443, minimum: 0, maximum: 65535, description: 'HTTPS port of the webhook (0 = any free port). The API server calls POST /inject; /livez and /readyz serve probes.' },
  tlsCert: { env: 'PALISADE_WEBHOOK_TLS_CERT', type: 'string', default: '/var/run/secrets/palisade-webhook/tls.crt', description: 'Serving certificate chain (PEM); its SANs must include the webhook Service DNS name. Reloaded on change.' },
  tlsKey: { env: 'PALISADE_WEBHOOK_TLS_KEY', type: 'string', default: '/var/run/secrets/palisade-webhook/tls.key', description: 'Serving private key (PEM). Reloaded on change.' },
  certPollMs: { env: 'PALISADE_WEBHOOK_CERT_POLL_MS', type: 'integer', default: 10000, minimum: 100, description: 'How often the certificate files are re-read besides the directory watch, milliseconds.' },
  maxBodyBytes: { env: 'PALISADE_WEBHOOK_MAX_BODY_BYTES', type: 'integer', default: 8388608, minimum: 1024, description: 'Largest AdmissionReview accepted, bytes (the API server caps objects at about 3 MiB; a review carries one or two).' },
  requestTimeoutMs: { env: 'PALISADE_WEBHOOK_REQUEST_TIMEOUT_MS', type: 'integer', default: 10000, minimum: 100, description: 'Time a caller has to send a whole request, milliseconds.' },
  drainDelayMs: { env: 'PALISADE_WEBHOOK_DRAIN_DELAY_MS', type: 'integer', default: 5000, minimum: 0, description: 'On SIGTERM: keep answering (with /readyz failing) this long before closing the listener, milliseconds, so the API server stops routing to this replica first. With failurePolicy Fail a call to a closed replica would fail a pod creation.' },
  shutdownGraceMs: { env: 'PALISADE_WEBHOOK_SHUTDOWN_GRACE_MS', type: 'integer', default: 5000, minimum: 0, description: 'On SIGTERM: time for in-flight reviews to finish, milliseconds.' },
  logLevel: { env: 'PALISADE_LOG_LEVEL', type: 'string', default: 'info', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], description: 'pino log level.' },
} as const satisfies Record<string, SettingSpec>;

type SpecType<S extends SettingSpec> = S['type'] extends 'string' ? string : number;
export type WebhookSettings = { readonly [K in keyof typeof WEBHOOK_SETTINGS]: SpecType<(typeof WEBHOOK_SETTINGS)[K]> };

const schema = schemaOfSpecs(WEBHOOK_SETTINGS);
const validate = createAjv({ coerceTypes: true }).compile(schema);

export function loadWebhookSettings(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<keyof WebhookSettings, unknown>> = {}): WebhookSettings {
  const data = readEnvSpecs(WEBHOOK_SETTINGS, env);
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) data[k] = v;
  if (!validate(data)) {
    const lines = describeAjvErrors(validate.errors, 'settings', data).map((line) => {
      const key = /^settings\/(\w+)/.exec(line)?.[1] as keyof typeof WEBHOOK_SETTINGS | undefined;
      return key && WEBHOOK_SETTINGS[key] ? `${WEBHOOK_SETTINGS[key].env}: ${line.slice(line.indexOf(':') + 2)}` : line;
    });
    throw new PalisadeError('CONFIG_INVALID', `invalid webhook settings:\n  - ${lines.join('\n  - ')}`);
  }
  return deepFreeze(data as WebhookSettings);
}

export function webhookSettingsTable(): string {
  return envSpecsTable(WEBHOOK_SETTINGS);
}
