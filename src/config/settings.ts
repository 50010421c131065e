/**
 * Process settings of the sidecar: where things are, not what is allowed
 * (that is the policy). Read from PALISADE_* environment variables (flags of
 * `palisade sidecar` override them), validated by ajv with defaults, frozen.
 * The README's settings table is generated from this schema
 * (`palisade settings --markdown`) and a test checks it is current.
 */
import { PalisadeError } from '../errors/codes.ts';
import { createAjv, describeAjvErrors } from '../util/ajv.ts';
import { deepFreeze } from '../util/freeze.ts';

interface SettingSpec {
  readonly env: string;
  readonly type: 'string' | 'integer' | 'number' | 'boolean';
  readonly default: string | number | boolean;
  readonly description: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly enum?: readonly string[];
}

/** Every sidecar setting: name -> env var, type, default, and what it means (with its unit). */
export const SETTINGS = {
  policyFile: { env: 'PALISADE_POLICY', type: 'string', default: '/etc/palisade/policy/policy.yaml', description: 'Policy file (YAML or JSON). Watched; a valid change applies without restart, an invalid one is refused.' },
  listenHost: { env: 'PALISADE_LISTEN_HOST', type: 'string', default: '0.0.0.0', description: 'Address of the mTLS listener.' },
  listenPort: { env: 'PALISADE_LISTEN_PORT', type: 'integer', default: 8443, minimum: 0, maximum: 65535, description: 'Port of the mTLS listener (0 = any free port).' },
  plaintextPort: { env: 'PALISADE_PLAINTEXT_PORT', type: 'integer', default: 8080, minimum: 0, maximum: 65535, description: 'Port of the plain-HTTP listener, opened only when the policy sets spec.listener.allowPlaintext.' },
  adminHost: { env: 'PALISADE_ADMIN_HOST', type: 'string', default: '0.0.0.0', description: 'Address of the admin listener (/livez, /readyz, /metrics).' },
  adminPort: { env: 'PALISADE_ADMIN_PORT', type: 'integer', default: 9901, minimum: 0, maximum: 65535, description: 'Port of the admin listener.' },
  upstream: { env: 'PALISADE_UPSTREAM', type: 'string', default: 'http://127.0.0.1:8081', description: 'The protected service (http://host:port on localhost).' },
  upstreamConnectTimeoutMs: { env: 'PALISADE_UPSTREAM_CONNECT_TIMEOUT_MS', type: 'integer', default: 1000, minimum: 1, description: 'Upstream connect timeout, milliseconds; exceeded -> 504 UPSTREAM_TIMEOUT.' },
  upstreamTimeoutMs: { env: 'PALISADE_UPSTREAM_TIMEOUT_MS', type: 'integer', default: 15000, minimum: 1, description: 'Upstream response (headers) timeout, milliseconds; exceeded -> 504 UPSTREAM_TIMEOUT.' },
  upstreamConnections: { env: 'PALISADE_UPSTREAM_CONNECTIONS', type: 'integer', default: 128, minimum: 1, description: 'Keep-alive connections to the upstream, at most.' },
  tlsCert: { env: 'PALISADE_TLS_CERT', type: 'string', default: '/var/run/secrets/palisade/tls.crt', description: 'Server certificate chain (PEM). Watched and reloaded on change.' },
  tlsKey: { env: 'PALISADE_TLS_KEY', type: 'string', default: '/var/run/secrets/palisade/tls.key', description: 'Server private key (PEM). Watched and reloaded on change.' },
  tlsCa: { env: 'PALISADE_TLS_CA', type: 'string', default: '/var/run/secrets/palisade/ca.crt', description: 'Trust bundle (PEM) that client certificates must chain to. Watched and reloaded on change.' },
  tlsMinVersion: { env: 'PALISADE_TLS_MIN_VERSION', type: 'string', default: 'TLSv1.2', enum: ['TLSv1.2', 'TLSv1.3'], description: 'Lowest TLS version accepted.' },
  requireClientCert: { env: 'PALISADE_REQUIRE_CLIENT_CERT', type: 'boolean', default: true, description: 'Refuse TLS handshakes without a client certificate that chains to the trust bundle.' },
  decisionsFile: { env: 'PALISADE_DECISIONS_FILE', type: 'string', default: 'stdout', description: 'NDJSON decision sink target when Kafka is not configured: "stdout" or a file path.' },
  logLevel: { env: 'PALISADE_LOG_LEVEL', type: 'string', default: 'info', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], description: 'pino log level.' },
  accessLog: { env: 'PALISADE_ACCESS_LOG', type: 'boolean', default: false, description: 'Also log one line per request (the decision stream already records every request).' },
  trustedProxies: { env: 'PALISADE_TRUSTED_PROXIES', type: 'string', default: '', description: 'Comma-separated IPs/CIDRs whose X-Forwarded-For is believed; others\' is ignored for the client IP.' },
  shutdownGraceMs: { env: 'PALISADE_SHUTDOWN_GRACE_MS', type: 'integer', default: 10000, minimum: 0, description: 'On SIGTERM: time to finish in-flight requests and flush decisions, milliseconds.' },
  headersTimeoutMs: { env: 'PALISADE_HEADERS_TIMEOUT_MS', type: 'integer', default: 10000, minimum: 100, description: 'Time a client has to send complete request headers, milliseconds (slowloris protection).' },
  requestTimeoutMs: { env: 'PALISADE_REQUEST_TIMEOUT_MS', type: 'integer', default: 30000, minimum: 100, description: 'Time a client has to send the whole request including the body, milliseconds.' },
  keepAliveTimeoutMs: { env: 'PALISADE_KEEPALIVE_TIMEOUT_MS', type: 'integer', default: 65000, minimum: 0, description: 'Idle keep-alive connection timeout, milliseconds.' },
} as const satisfies Record<string, SettingSpec>;

type SpecType<S extends SettingSpec> = S['type'] extends 'string' ? string : S['type'] extends 'boolean' ? boolean : number;
export type Settings = { readonly [K in keyof typeof SETTINGS]: SpecType<(typeof SETTINGS)[K]> };

const schema = {
  type: 'object',
  additionalProperties: false,
  properties: Object.fromEntries(
    Object.entries(SETTINGS).map(([k, s]) => {
      const spec = s as SettingSpec;
      const p: Record<string, unknown> = { type: spec.type, default: spec.default, description: spec.description };
      if (spec.minimum !== undefined) p['minimum'] = spec.minimum;
      if (spec.maximum !== undefined) p['maximum'] = spec.maximum;
      if (spec.enum) p['enum'] = spec.enum;
      return [k, p];
    }),
  ),
};
const validate = createAjv({ coerceTypes: true }).compile(schema);

/** Reads settings from an environment (and overrides, e.g. CLI flags). */
export function loadSettings(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<keyof Settings, unknown>> = {}): Settings {
  const data: Record<string, unknown> = {};
  for (const [k, s] of Object.entries(SETTINGS)) {
    const v = env[s.env];
    if (v !== undefined && v !== '') data[k] = v;
  }
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) data[k] = v;
  if (!validate(data)) {
    const lines = describeAjvErrors(validate.errors, 'settings', data).map((line) => {
      // Name the environment variable the user actually sets.
      const key = /^settings\/(\w+)/.exec(line)?.[1] as keyof typeof SETTINGS | undefined;
      return key && SETTINGS[key] ? `${SETTINGS[key].env}: ${line.slice(line.indexOf(':') + 2)}` : line;
    });
    throw new PalisadeError('CONFIG_INVALID', `invalid settings:\n  - ${lines.join('\n  - ')}`);
  }
  return deepFreeze(data as Settings);
}

/** Markdown table of the settings, for the README. */
export function settingsTable(): string {
  const rows = Object.values(SETTINGS).map((s) => `| \`${s.env}\` | \`${String(s.default)}\` | ${s.description} |`);
  return ['| Variable | Default | Meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
