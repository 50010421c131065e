/**
 * `palisade settings [sidecar|detector|webhook] [flags]`: every PALISADE_* setting a process would
 * run with, its value and where the value came from (environment, a flag, or the default), after
 * the same validation the process does (a bad value fails here as it would at start, exit 1).
 * With a component named, that command's own flags are accepted and shown as the source, so
 * `palisade settings sidecar --port 9443` shows what `palisade sidecar --port 9443` would use.
 *
 * `--markdown` prints the sidecar's reference table (the README's).
 */
import { DETECTOR_SETTINGS, loadDetectorSettings } from '../../../detectors/settings.ts';
import { loadSettings, SETTINGS, settingsTable } from '../../config/settings.ts';
import { loadWebhookSettings, WEBHOOK_SETTINGS } from '../../config/webhook-settings.ts';
import { CliExit, EXIT_OK, formatOutput, formatTable, parseCommand, UsageError } from '../args.ts';
import { detectorClientId } from '../kafka-required.ts';

export type SettingSource = 'environment' | 'default' | `flag --${string}`;

export interface SettingRow {
  /** The environment variable. */
  readonly name: string;
  readonly value: string | number | boolean;
  readonly source: SettingSource;
}

type Specs = Readonly<Record<string, { readonly env: string; readonly default: string | number | boolean }>>;

/** A flag that overrides one setting: the flag name (without --) per setting key. */
type FlagMap = Readonly<Record<string, string>>;

/** URLs in values keep their user name, never a password (an OTLP endpoint may carry one). */
function redact(v: string | number | boolean): string | number | boolean {
  return typeof v === 'string' ? v.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*):[^/@]*@/i, '$1:***@') : v;
}

function rows(specs: Specs, loaded: Readonly<Record<string, unknown>>, env: NodeJS.ProcessEnv, flags: FlagMap, given: Readonly<Record<string, unknown>>, keys = Object.keys(specs)): SettingRow[] {
  return keys.map((k) => {
    const spec = specs[k]!;
    const flag = flags[k];
    const fromEnv = env[spec.env];
    const source: SettingSource = flag !== undefined && given[flag] !== undefined ? `flag --${flag}` : fromEnv !== undefined && fromEnv !== '' ? 'environment' : 'default';
    return { name: spec.env, value: redact(loaded[k] as string | number | boolean), source };
  });
}

const COMPONENTS = {
  sidecar: {
    flags: { policyFile: 'policy', upstream: 'upstream', listenPort: 'port', adminPort: 'admin-port' } as FlagMap,
    options: { policy: { type: 'string' }, upstream: { type: 'string' }, port: { type: 'string' }, 'admin-port': { type: 'string' } },
    collect(env: NodeJS.ProcessEnv, given: Record<string, string | undefined>): SettingRow[] {
      const s = loadSettings(env, { policyFile: given['policy'], upstream: given['upstream'], listenPort: given['port'], adminPort: given['admin-port'] });
      return rows(SETTINGS, s, env, this.flags, given);
    },
  },
  detector: {
    flags: { configFile: 'config', adminPort: 'admin-port', kafkaBrokers: 'brokers' } as FlagMap,
    options: { config: { type: 'string' }, 'admin-port': { type: 'string' }, brokers: { type: 'string' } },
    collect(env: NodeJS.ProcessEnv, given: Record<string, string | undefined>): SettingRow[] {
      const d = loadDetectorSettings(env, { configFile: given['config'], adminPort: given['admin-port'] }) as unknown as Record<string, unknown>;
      // The detector shares the PALISADE_KAFKA_* settings (and the shutdown grace) with the sidecar.
      const s = loadSettings(env, { kafkaBrokers: given['brokers'], kafkaClientId: detectorClientId(env) });
      const shared = Object.keys(SETTINGS).filter((k) => k.startsWith('kafka') || k === 'shutdownGraceMs');
      const sharedRows = rows(SETTINGS, s, env, this.flags, given, shared).map((r) =>
        // Its client id's default is its own, not the sidecar's.
        r.name === SETTINGS.kafkaClientId.env && r.source === 'default' ? { ...r, value: 'palisade-detector' } : r,
      );
      return [...rows(DETECTOR_SETTINGS, d, env, this.flags, given).filter((r) => r.name !== SETTINGS.logLevel.env), ...sharedRows, ...rows(DETECTOR_SETTINGS, d, env, {}, {}, ['logLevel'])];
    },
  },
  webhook: {
    flags: { host: 'host', port: 'port', tlsCert: 'tls-cert', tlsKey: 'tls-key' } as FlagMap,
    options: { host: { type: 'string' }, port: { type: 'string' }, 'tls-cert': { type: 'string' }, 'tls-key': { type: 'string' } },
    collect(env: NodeJS.ProcessEnv, given: Record<string, string | undefined>): SettingRow[] {
      const w = loadWebhookSettings(env, { host: given['host'], port: given['port'], tlsCert: given['tls-cert'], tlsKey: given['tls-key'] });
      return rows(WEBHOOK_SETTINGS, w, env, this.flags, given);
    },
  },
} as const;

type Component = keyof typeof COMPONENTS;

const USAGE = `usage: palisade settings [sidecar|detector|webhook] [flags of that command] [-o json|yaml]
       palisade settings --markdown

Every PALISADE_* setting of the sidecar, the detector and the webhook (or of the one named):
its value, validated as the process would, and where it came from: environment, flag or default.
Naming a component accepts that command's flags, so the table shows what it would run with:
  sidecar:  --policy FILE --upstream URL --port N --admin-port N
  detector: --config FILE --admin-port N --brokers LIST
  webhook:  --host H --port N --tls-cert FILE --tls-key FILE

Options:
      --markdown            the sidecar's settings reference as a Markdown table (the README's)
`;

export async function run(argv: string[]): Promise<number> {
  const name = 'palisade settings';
  const first = argv[0];
  const component = first !== undefined && Object.hasOwn(COMPONENTS, first) ? (first as Component) : undefined;
  const rest = component ? argv.slice(1) : argv;
  const options = { markdown: { type: 'boolean' }, ...(component ? COMPONENTS[component].options : {}) } as const;
  let parsed;
  try {
    parsed = parseCommand(rest, { name: component ? `${name} ${component}` : name, usage: USAGE, options, output: true });
  } catch (err) {
    // A flag of a component given without the component: say which to name.
    if (err instanceof UsageError && !component && /^unknown flag /.test(err.message)) {
      throw new UsageError(name, `${err.message}; component flags need the component first, e.g. palisade settings sidecar --port 9443`);
    }
    if (err instanceof UsageError && !component && /^takes no arguments/.test(err.message)) {
      throw new UsageError(name, `unknown component "${rest[0] ?? ''}"; use sidecar, detector or webhook`);
    }
    throw err;
  }
  const { values, output } = parsed;
  if (values.markdown) throw new CliExit(EXIT_OK, settingsTable() + '\n');
  const given = values as Record<string, string | undefined>;
  const chosen: Component[] = component ? [component] : ['sidecar', 'detector', 'webhook'];
  const result: Partial<Record<Component, SettingRow[]>> = {};
  for (const c of chosen) result[c] = COMPONENTS[c].collect(process.env, given);
  process.stdout.write(
    formatOutput(output, result, () =>
      chosen
        .map((c) => `${c}:\n${formatTable(['NAME', 'VALUE', 'SOURCE'], (result[c] ?? []).map((r) => [r.name, r.value === '' ? '""' : String(r.value), r.source]), 70).trimEnd().replace(/^/gm, '  ')}`)
        .join('\n\n'),
    ),
  );
  return EXIT_OK;
}
