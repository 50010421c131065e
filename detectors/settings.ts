/**
 * Process settings of `palisade detector` beyond the shared PALISADE_KAFKA_*
 * ones (src/config/settings.ts): where its config file is and where its admin
 * listener (/livez, /readyz, /metrics) binds. Validated by ajv with defaults.
 */
import { PalisadeError } from '../src/errors/codes.ts';
import { createAjv, describeAjvErrors } from '../src/util/ajv.ts';

export const DETECTOR_SETTINGS = {
  configFile: { env: 'PALISADE_DETECTOR_CONFIG', type: 'string', default: '', description: 'Detector config file (YAML or JSON, docs/detector.md); empty = every default.' },
  adminHost: { env: 'PALISADE_DETECTOR_ADMIN_HOST', type: 'string', default: '0.0.0.0', description: 'Address of the detector\'s admin listener (/livez, /readyz, /metrics).' },
  adminPort: { env: 'PALISADE_DETECTOR_ADMIN_PORT', type: 'integer', default: 9902, minimum: 0, maximum: 65535, description: 'Port of the detector\'s admin listener (0 = any free port).' },
  logLevel: { env: 'PALISADE_LOG_LEVEL', type: 'string', default: 'info', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], description: 'pino log level.' },
} as const;

export interface DetectorSettings {
  readonly configFile: string;
  readonly adminHost: string;
  readonly adminPort: number;
  readonly logLevel: string;
}

const validate = createAjv({ coerceTypes: true }).compile({
  type: 'object',
  additionalProperties: false,
  properties: Object.fromEntries(
    Object.entries(DETECTOR_SETTINGS).map(([k, s]) => {
      const { env: _env, ...rest } = s as Record<string, unknown>;
      return [k, rest];
    }),
  ),
});

export function loadDetectorSettings(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<keyof DetectorSettings, unknown>> = {}): DetectorSettings {
  const data: Record<string, unknown> = {};
  for (const [k, s] of Object.entries(DETECTOR_SETTINGS)) {
    const v = env[s.env];
    if (v !== undefined && v !== '') data[k] = v;
  }
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) data[k] = v;
  if (!validate(data)) {
    const lines = describeAjvErrors(validate.errors, 'settings', data).map((line) => {
      const key = /^settings\/(\w+)/.exec(line)?.[1] as keyof typeof DETECTOR_SETTINGS | undefined;
      return key && DETECTOR_SETTINGS[key] ? `${DETECTOR_SETTINGS[key].env}: ${line.slice(line.indexOf(':') + 2)}` : line;
    });
    throw new PalisadeError('CONFIG_INVALID', `invalid detector settings:\n  - ${lines.join('\n  - ')}`);
  }
  return data as unknown as DetectorSettings;
}

export function detectorSettingsTable(): string {
  const rows = Object.values(DETECTOR_SETTINGS).map((s) => `| \`${s.env}\` | \`${String(s.default)}\` | ${s.description} |`);
  return ['| Variable | Default | Meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
