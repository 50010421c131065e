/**
 * The detector's one configuration: every threshold, window and feedback rule,
 * validated by ajv with documented defaults (each parameter names its unit).
 * The schema is split by section (detectors/config/*.ts); the config's type
 * is derived from it (FromSchema), so each setting is written once.
 * Loaded from a YAML/JSON file (PALISADE_DETECTOR_CONFIG) or all defaults.
 * docs/detector.md's parameter table is generated from this schema
 * (`configTable()`) and a test checks the doc is current.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { PalisadeError } from '../src/errors/codes.ts';
import { createAjv, describeAjvErrors } from '../src/util/ajv.ts';
import { deepFreeze } from '../src/util/freeze.ts';

import { alertsSchema } from './config/alerts.ts';
import { detectionsSchema } from './config/detections.ts';
import { engineSchema, severitySchema } from './config/engine.ts';
import { feedbackSchema } from './config/feedback.ts';
import { guardSchema } from './config/guard.ts';
import { kafkaSchema } from './config/kafka.ts';
import type { FromSchema } from './config/kit.ts';
import { populationSchema } from './config/population.ts';

export { DETECTION_IDS, FAILURE_DETECTIONS, SEVERITIES, WINDOW_NAMES, type DetectionId, type Severity, type WindowName } from './config/kit.ts';

/** The whole schema; each section lives in detectors/config/, beside the others. */
export const detectorConfigSchema = {
  $id: 'https://palisade.dev/schemas/detector-config-v1.json',
  type: 'object',
  additionalProperties: false,
  properties: {
    engine: engineSchema,
    severity: severitySchema,
    detections: detectionsSchema,
    population: populationSchema,
    alerts: alertsSchema,
    feedback: feedbackSchema,
    guard: guardSchema,
    kafka: kafkaSchema,
  },
} as const;

// ---- the validated config's type: derived from the schema, not written a second time ----
export type DetectorConfig = FromSchema<typeof detectorConfigSchema>;
type Detections = DetectorConfig['detections'];
export type WindowConfig = DetectorConfig['engine']['windows']['short'];
export type ActionConfig = DetectorConfig['feedback']['high'] | NonNullable<NonNullable<DetectorConfig['feedback']['detections']['rate.burst']>['high']>;
export type RateDetectionConfig = Detections['rate.burst'] | Detections['rate.sustained'];
export type CountDetectionConfig = Detections['auth.failures'];
export type DistinctDetectionConfig = Detections['enumeration.paths'];
export type SizeDetectionConfig = Detections['probing.size'];
export type PopulationDetectionConfig = Detections['population.requests'];
export type AlertmanagerConfig = DetectorConfig['alerts']['alertmanager'];

/** A partial config, as written in a file or by a test (deep partial of DetectorConfig). */
export type DetectorConfigInput = DeepPartial<DetectorConfig>;
type DeepPartial<T> = T extends readonly (infer _U)[] ? T : T extends object ? { -readonly [K in keyof T]?: DeepPartial<T[K]> } : T;

const validate = createAjv().compile(detectorConfigSchema);

/** Validates a config object (defaults filled in), or throws CONFIG_INVALID naming every bad field. */
export function parseDetectorConfig(input: unknown = {}, source = 'detector config'): DetectorConfig {
  const data = structuredClone(input ?? {}) as Record<string, unknown>;
  refuseWebhookAlertmanager(data, source);
  if (!validate(data)) {
    const lines = describeAjvErrors(validate.errors, 'config', data);
    throw new PalisadeError('CONFIG_INVALID', `${source} is invalid:\n  - ${lines.join('\n  - ')}`);
  }
  const cfg = data as unknown as DetectorConfig;
  const s = cfg.severity;
  if (!(s.medium <= s.high && s.high <= s.critical)) throw new PalisadeError('CONFIG_INVALID', `${source}: severity thresholds must rise: medium ${s.medium} <= high ${s.high} <= critical ${s.critical}`);
  for (const [name, w] of Object.entries(cfg.engine.windows)) {
    if ((w.seconds * 1000) % w.buckets !== 0) throw new PalisadeError('CONFIG_INVALID', `${source}: engine.windows.${name}: ${w.seconds} s cannot be cut into ${w.buckets} whole-millisecond buckets`);
  }
  cfg.alerts.alertmanager.urls.forEach((u, i) => {
    let url: URL | null = null;
    try {
      url = new URL(u);
    } catch {
      // not a URL at all: said below
    }
    if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.search !== '' || url.hash !== '') {
      throw new PalisadeError('CONFIG_INVALID', `${source}: alerts.alertmanager.urls[${i}] ${JSON.stringify(u)} is not an Alertmanager base URL: write http(s)://host:port, with a path prefix if Alertmanager has one (e.g. "http://alertmanager:9093"); /api/v2/alerts is added`);
    }
  });
  return deepFreeze(cfg);
}

/**
 * The webhook's former "alertmanager" format was the body Alertmanager sends to its receivers,
 * which Alertmanager itself does not accept: say where alerts for Alertmanager go now.
 */
function refuseWebhookAlertmanager(data: Record<string, unknown>, source: string): void {
  const formats = ((data['alerts'] as Record<string, unknown> | undefined)?.['webhook'] as Record<string, unknown> | undefined)?.['formats'];
  if (Array.isArray(formats) && formats.includes('alertmanager')) {
    throw new PalisadeError('CONFIG_INVALID', `${source}: alerts.webhook.formats: "alertmanager" is no longer a webhook format (it was the notification Alertmanager sends to receivers, which Alertmanager does not accept); push alerts to Alertmanager with alerts.alertmanager.urls: ["http://alertmanager:9093"] and keep "slack" (or drop formats) for the webhook`);
  }
}

/** Reads the config from a YAML or JSON file (empty path = all defaults). */
export function loadDetectorConfig(file: string | undefined): DetectorConfig {
  if (!file) return parseDetectorConfig({});
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PalisadeError('CONFIG_INVALID', `detector config ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new PalisadeError('CONFIG_INVALID', `detector config ${file}: not YAML/JSON: ${(err as Error).message}`);
  }
  return parseDetectorConfig(doc ?? {}, `detector config ${file}`);
}

/** Markdown table of every parameter (path, default, meaning), for docs/detector.md. */
export function configTable(): string {
  const rows: string[] = [];
  const walk = (node: Record<string, unknown>, path: string) => {
    const props = node['properties'] as Record<string, Record<string, unknown>> | undefined;
    const isLeafObject = node['type'] === 'object' && (!props || path.startsWith('feedback.detections') || /^feedback\.(low|medium|high|critical)$/.test(path));
    if (node['type'] !== 'object' || isLeafObject) {
      const def = node['default'];
      rows.push(`| \`${path}\` | \`${def === undefined ? '' : JSON.stringify(def)}\` | ${String(node['description'] ?? '')} |`);
      return;
    }
    for (const [k, child] of Object.entries(props ?? {})) walk(child, path ? `${path}.${k}` : k);
  };
  walk(detectorConfigSchema as unknown as Record<string, unknown>, '');
  return ['| Parameter | Default | Meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
