/**
 * The detector's one configuration: every threshold, window and feedback rule,
 * validated by ajv with documented defaults (each parameter names its unit).
 * Loaded from a YAML/JSON file (PALISADE_DETECTOR_CONFIG) or all defaults.
 * docs/detector.md's parameter table is generated from this schema
 * (`configTable()`) and a test checks the doc is current.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { PalisadeError } from '../src/errors/codes.ts';
import { createAjv, describeAjvErrors } from '../src/util/ajv.ts';
import { deepFreeze } from '../src/util/freeze.ts';

export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const WINDOW_NAMES = ['short', 'medium', 'long'] as const;
export type WindowName = (typeof WINDOW_NAMES)[number];

/** Every detection the engine knows, by stable id (metric label, alert field, feedback key). */
export const DETECTION_IDS = [
  'rate.burst',
  'rate.sustained',
  'auth.failures',
  'auth.slow',
  'enumeration.paths',
  'enumeration.not-found',
  'probing.schema',
  'probing.size',
  'population.requests',
  'population.auth-failures',
  'population.not-found',
  'population.violations',
] as const;
export type DetectionId = (typeof DETECTION_IDS)[number];

// ---- schema helpers: every leaf has a type, a default and a description with its unit ----
const int = (def: number, min: number, description: string, max?: number) => ({ type: 'integer', default: def, minimum: min, ...(max !== undefined ? { maximum: max } : {}), description });
const num = (def: number, min: number, description: string, max?: number) => ({ type: 'number', default: def, minimum: min, ...(max !== undefined ? { maximum: max } : {}), description });
const bool = (def: boolean, description: string) => ({ type: 'boolean', default: def, description });
const windowRef = (def: WindowName) => ({ type: 'string', enum: [...WINDOW_NAMES], default: def, description: `Which sliding window of engine.windows the detection reads (short/medium/long). Default ${def}.` });
const obj = (description: string, properties: Record<string, unknown>) => ({ type: 'object', additionalProperties: false, default: {}, description, properties });

const enabled = bool(true, 'Run this detection. Default true.');
const warmupOnly = bool(true, 'Judge a client only after its warm-up (engine.warmupEvents/warmupSeconds): the threshold is relative to its own baseline. Default true.');
const warmupFloors = bool(false, 'false: a client still in warm-up is judged by the floors (count and share) alone, so an attack cannot hide in its own warm-up; true: wait for the warm-up. After the warm-up its baseline applies too, unless that baseline is itself mostly failures (share >= minRatio). Default false.');
const ratio = (def: number) => num(def, 1, `Observed must exceed this multiple of the client's baseline mean, ×. Default ${def}.`);
const sigma = (def: number) => num(def, 0, `Observed must exceed the baseline mean by this many standard deviations (control limit), σ. Default ${def}.`);

const windowSpec = (seconds: number, buckets: number, what: string) =>
  obj(`${what} Sliding window made of buckets that expire one at a time.`, {
    seconds: int(seconds, 1, `Length of the window, seconds. Default ${seconds}.`),
    buckets: int(buckets, 2, `Buckets the window is cut into (its time resolution = seconds/buckets), count. Default ${buckets}.`, 600),
  });

const populationSpec = (what: string, minCount: number, ratioDef: number) =>
  obj(`A client far above the population's normal for the same route: ${what} per client and epoch on one route, against the distribution over all clients on that route (log scale). Works for new clients too.`, {
    enabled,
    minCount: int(minCount, 1, `Observed count in the sliding epoch must reach at least this, events. Default ${minCount}.`),
    ratio: num(ratioDef, 1, `Observed must exceed this multiple of the route's typical (geometric mean) client, ×. Default ${ratioDef}.`),
    sigma: num(3, 0, 'Observed must exceed the route distribution by this many standard deviations on the log scale, σ. Default 3.'),
  });

const actionSpec = (def: { action: string; durationSeconds?: number }) => ({
  type: 'object',
  additionalProperties: false,
  required: ['action'],
  default: def,
  description: `What an anomaly of this severity does: alert only, block the client for durationSeconds, or nothing. Default ${def.action}${def.durationSeconds ? ` for ${def.durationSeconds} s` : ''}.`,
  properties: {
    action: { type: 'string', enum: ['none', 'alert', 'block'], description: 'none: count only; alert: publish the alert; block: alert and block the client.' },
    durationSeconds: int(def.durationSeconds ?? 900, 1, 'How long a block lasts, seconds (block only). Default 900.'),
  },
});

const actionOverride = {
  type: 'object',
  additionalProperties: false,
  properties: Object.fromEntries(
    SEVERITIES.map((s) => [
      s,
      {
        type: 'object',
        additionalProperties: false,
        required: ['action'],
        properties: {
          action: { type: 'string', enum: ['none', 'alert', 'block'] },
          durationSeconds: { type: 'integer', minimum: 1, description: 'Block duration, seconds.' },
        },
      },
    ]),
  ),
};

export const detectorConfigSchema = {
  $id: 'https://palisade.dev/schemas/detector-config-v1.json',
  type: 'object',
  additionalProperties: false,
  properties: {
    engine: obj('Per-client state, baselines and windows.', {
      warmupEvents: int(30, 0, 'Events a client must have sent before its own baseline can flag it, events. Default 30.'),
      warmupSeconds: int(60, 0, 'Time since the first event of a client before its own baseline can flag it, seconds. Default 60. (Population detections apply from the first event.)'),
      baselineHalfLifeSeconds: int(3600, 10, 'Half-life of the per-client exponentially weighted baselines (mean and variance of per-second counts), seconds: older behaviour counts half as much after this. Default 3600.'),
      learnClampSigma: num(4, 1, 'A second far above the baseline is learned only up to mean + this many σ (or twice the mean), so an attacker cannot drag its own baseline up, σ. Default 4.'),
      maxClients: int(200000, 100, 'Clients kept in memory, at most; beyond it the least recently seen are evicted, clients. Default 200000.'),
      idleEvictSeconds: int(86400, 60, 'A client not seen for this long is dropped (and its checkpoint deleted), seconds. Default 86400.'),
      sweepIntervalSeconds: int(10, 1, 'How often the engine folds idle epochs and evicts idle clients, seconds of event time. Default 10.'),
      windows: obj('The three sliding windows every client keeps.', {
        short: windowSpec(1, 10, 'Bursts.'),
        medium: windowSpec(60, 12, 'Failures, enumeration, probing, sustained rate.'),
        long: windowSpec(900, 15, 'Slow attacks spread over minutes.'),
      }),
    }),
    severity: obj('Severity from score = observed / threshold (a detection fires at score 1).', {
      medium: num(1.5, 1, 'Score from which an anomaly is medium, ×threshold. Default 1.5.'),
      high: num(2.5, 1, 'Score from which an anomaly is high, ×threshold. Default 2.5.'),
      critical: num(5, 1, 'Score from which an anomaly is critical, ×threshold. Default 5.'),
    }),
    detections: obj('Each detection: one small rule module (detectors/rules/). Thresholds are max(floor, ratio × baseline, baseline + sigma × σ): every condition must hold.', {
      'rate.burst': obj('Requests per second over the window against the client\'s own per-second baseline (EWMA mean and σ): bursts.', {
        enabled,
        requireWarmup: bool(false, 'true: wait for the warm-up; false: a client in warm-up (no baseline yet) is judged by coldMinRate alone. Default false.'),
        window: windowRef('short'),
        minRate: num(30, 0, 'Floor: observed rate must reach at least this, requests/second. Default 30.'),
        coldMinRate: num(60, 0, 'Threshold for a client still in warm-up, which has no baseline: only a clearly abusive rate flags a new client (high severity at 2.5 times this), requests/second. Default 60.'),
        ratio: ratio(4),
        sigma: sigma(6),
      }),
      'rate.sustained': obj('Average requests per second over a longer window against the client\'s baseline: scraping.', {
        enabled,
        requireWarmup: warmupOnly,
        window: windowRef('medium'),
        minRate: num(5, 0, 'Floor: observed average rate must reach at least this, requests/second. Default 5.'),
        ratio: ratio(5),
        sigma: sigma(6),
      }),
      'auth.failures': obj('Authentication and authorization failures (AUTHN_*/AUTHZ_* and upstream 401/403) over the window: credential stuffing, token guessing.', {
        enabled,
        requireWarmup: warmupFloors,
        window: windowRef('medium'),
        minCount: int(20, 1, 'Floor: failures in the window, events. Default 20.'),
        minRatio: num(0.5, 0, 'Failures must be at least this share of the client\'s requests in the window, fraction. Default 0.5.', 1),
        ratio: ratio(4),
        sigma: sigma(6),
      }),
      'auth.slow': obj('The same failures over the long window: slow attacks spread over minutes.', {
        enabled,
        requireWarmup: warmupFloors,
        window: windowRef('long'),
        minCount: int(30, 1, 'Floor: failures in the window, events. Default 30.'),
        minRatio: num(0.2, 0, 'Failures must be at least this share of the client\'s requests in the window, fraction. Default 0.2.', 1),
        ratio: ratio(4),
        sigma: sigma(6),
      }),
      'enumeration.paths': obj('Distinct request paths (HyperLogLog estimate) over the window against the client\'s usual number: walking resource ids.', {
        enabled,
        requireWarmup: warmupOnly,
        window: windowRef('medium'),
        minDistinct: int(60, 1, 'Floor: distinct paths in the window, paths. Default 60.'),
        minSamples: int(2, 1, 'Samples of the client\'s distinct-path count (one per half window it was active in) before its baseline is used, samples. Default 2.'),
        ratio: ratio(4),
        sigma: sigma(6),
      }),
      'enumeration.not-found': obj('404s (ROUTE_UNKNOWN and upstream 404) over the window and their share: guessing resource ids or paths.', {
        enabled,
        requireWarmup: warmupFloors,
        window: windowRef('medium'),
        minCount: int(30, 1, 'Floor: 404s in the window, events. Default 30.'),
        minRatio: num(0.5, 0, '404s must be at least this share of the client\'s requests in the window, fraction. Default 0.5.', 1),
        ratio: ratio(4),
        sigma: sigma(6),
      }),
      'probing.schema': obj('Schema violations and malformed requests (SCHEMA_VIOLATION, BODY_*, CONTENT_TYPE_NOT_ALLOWED, PATH_INVALID, ...) over the window: probing.', {
        enabled,
        requireWarmup: warmupFloors,
        window: windowRef('medium'),
        minCount: int(15, 1, 'Floor: violations in the window, events. Default 15.'),
        minRatio: num(0.2, 0, 'Violations must be at least this share of the client\'s requests in the window, fraction. Default 0.2.', 1),
        ratio: ratio(4),
        sigma: sigma(6),
      }),
      'probing.size': obj('Request bodies far larger than the client\'s usual size (log-scale EWMA): payload probing. Counts outliers over the window.', {
        enabled,
        requireWarmup: warmupOnly,
        window: windowRef('medium'),
        minCount: int(5, 1, 'Floor: outlying requests in the window, events. Default 5.'),
        minBytes: int(8192, 0, 'A body smaller than this is never an outlier, bytes. Default 8192.'),
        sigma: num(4, 0, 'A body is an outlier above the client\'s log2 size mean + this many σ (σ at least 0.5), σ. Default 4.'),
        minSamples: int(20, 1, 'Bodies the client must have sent before its size baseline is used, requests. Default 20.'),
        halfLifeSamples: int(500, 2, 'Half-life of the client\'s body size baseline, requests with a body. Default 500.'),
      }),
      'population.requests': populationSpec('requests', 100, 8),
      'population.auth-failures': populationSpec('authentication/authorization failures', 20, 8),
      'population.not-found': populationSpec('404s', 30, 8),
      'population.violations': populationSpec('schema violations', 15, 8),
    }),
    population: obj('The per-route population model shared by the population.* detections.', {
      epochSeconds: int(10, 1, 'Length of a client epoch on a route; each finished epoch is one sample of the route\'s distribution, seconds. Default 10.'),
      minSamples: int(50, 1, 'Samples (client epochs) a route needs before population detections use it, samples. Default 50.'),
      halfLifeSamples: int(2000, 10, 'Half-life of the route distribution, samples. Default 2000.'),
      maxRoutes: int(2000, 1, 'Routes modelled, at most (route templates are bounded by the policy; unknown routes share one), routes. Default 2000.'),
      applyToWarmClients: bool(true, 'Judge warm clients against the population too (false: the population only covers clients still in warm-up). Default true.'),
    }),
    alerts: obj('Alert de-duplication and the optional webhook.', {
      cooldownSeconds: int(300, 0, 'After an alert for a client and detection, the same alert is not repeated for this long unless its severity rises, seconds. Default 300.'),
      webhook: obj('Optional HTTP webhook receiving every published alert.', {
        url: { type: 'string', default: '', description: 'Webhook URL (http or https); empty = no webhook. Default "".' },
        formats: { type: 'array', uniqueItems: true, minItems: 1, default: ['alertmanager'], items: { type: 'string', enum: ['alertmanager', 'slack'] }, description: 'Body formats sent, one POST each: alertmanager (Alertmanager webhook, version 4) and/or slack (Slack-style {text, blocks}). Default ["alertmanager"].' },
        timeoutMs: int(5000, 100, 'Timeout of one POST, milliseconds. Default 5000.'),
        retries: int(2, 0, 'Retries of a failed POST (1 s, 2 s, ... backoff), count. Default 2.'),
        minSeverity: { type: 'string', enum: [...SEVERITIES], default: 'low', description: 'Only alerts of this severity or higher go to the webhook. Default low.' },
      }),
    }),
    feedback: obj('What an anomaly does, by severity, with per-detection overrides. A manual unblock wins until the detector sees new evidence (events after the unblock).', {
      low: actionSpec({ action: 'none' }),
      medium: actionSpec({ action: 'alert' }),
      high: actionSpec({ action: 'block', durationSeconds: 900 }),
      critical: actionSpec({ action: 'block', durationSeconds: 3600 }),
      detections: {
        type: 'object',
        additionalProperties: false,
        default: { 'probing.size': { high: { action: 'alert' }, critical: { action: 'alert' } } },
        description: 'Per-detection overrides by severity, e.g. {"probing.size": {"critical": {"action": "alert"}}}. Default: probing.size never blocks.',
        properties: Object.fromEntries(DETECTION_IDS.map((id) => [id, actionOverride])),
      },
    }),
    kafka: obj('The detector\'s Kafka runtime (brokers, TLS, SASL and the decisions/blocklist/alerts topics come from the PALISADE_KAFKA_* settings).', {
      groupId: { type: 'string', minLength: 1, default: 'palisade-detector', description: 'Consumer group on the decisions topic; instances in one group share the partitions. Default "palisade-detector".' },
      stateTopic: { type: 'string', minLength: 1, default: 'palisade.detector-state.v1', description: 'Compacted topic of per-client baselines (checkpoints), restored on partition assignment. Default "palisade.detector-state.v1".' },
      checkpointIntervalMs: int(5000, 100, 'How often changed baselines are written to the state topic and consumer offsets committed, milliseconds. Default 5000.'),
      maxWaitMs: int(100, 1, 'Longest a fetch waits for new events on the broker, milliseconds (latency of detection). Default 100.'),
      expirySweepMs: int(5000, 100, 'How often expired blocks are tombstoned on the block-list topic, milliseconds. Default 5000.'),
    }),
  },
} as const;

// ---- the validated config type ----
export interface WindowConfig {
  readonly seconds: number;
  readonly buckets: number;
}
export interface ActionConfig {
  readonly action: 'none' | 'alert' | 'block';
  readonly durationSeconds?: number;
}
interface Base {
  readonly enabled: boolean;
  /** Population detections have no warm-up setting (they need no client history). */
  readonly requireWarmup?: boolean;
}
export interface RateDetectionConfig extends Base {
  readonly window: WindowName;
  readonly minRate: number;
  /** rate.burst: the threshold for clients in warm-up. */
  readonly coldMinRate?: number;
  readonly ratio: number;
  readonly sigma: number;
}
export interface CountDetectionConfig extends Base {
  readonly window: WindowName;
  readonly minCount: number;
  readonly minRatio?: number;
  readonly ratio: number;
  readonly sigma: number;
}
export interface DistinctDetectionConfig extends Base {
  readonly window: WindowName;
  readonly minDistinct: number;
  readonly minSamples: number;
  readonly ratio: number;
  readonly sigma: number;
}
export interface SizeDetectionConfig extends Base {
  readonly window: WindowName;
  readonly minCount: number;
  readonly minBytes: number;
  readonly sigma: number;
  readonly minSamples: number;
  readonly halfLifeSamples: number;
}
export interface PopulationDetectionConfig extends Base {
  readonly minCount: number;
  readonly ratio: number;
  readonly sigma: number;
}

export interface DetectorConfig {
  readonly engine: {
    readonly warmupEvents: number;
    readonly warmupSeconds: number;
    readonly baselineHalfLifeSeconds: number;
    readonly learnClampSigma: number;
    readonly maxClients: number;
    readonly idleEvictSeconds: number;
    readonly sweepIntervalSeconds: number;
    readonly windows: Readonly<Record<WindowName, WindowConfig>>;
  };
  readonly severity: { readonly medium: number; readonly high: number; readonly critical: number };
  readonly detections: {
    readonly 'rate.burst': RateDetectionConfig;
    readonly 'rate.sustained': RateDetectionConfig;
    readonly 'auth.failures': CountDetectionConfig;
    readonly 'auth.slow': CountDetectionConfig;
    readonly 'enumeration.paths': DistinctDetectionConfig;
    readonly 'enumeration.not-found': CountDetectionConfig;
    readonly 'probing.schema': CountDetectionConfig;
    readonly 'probing.size': SizeDetectionConfig;
    readonly 'population.requests': PopulationDetectionConfig;
    readonly 'population.auth-failures': PopulationDetectionConfig;
    readonly 'population.not-found': PopulationDetectionConfig;
    readonly 'population.violations': PopulationDetectionConfig;
  };
  readonly population: { readonly epochSeconds: number; readonly minSamples: number; readonly halfLifeSamples: number; readonly maxRoutes: number; readonly applyToWarmClients: boolean };
  readonly alerts: {
    readonly cooldownSeconds: number;
    readonly webhook: { readonly url: string; readonly formats: readonly ('alertmanager' | 'slack')[]; readonly timeoutMs: number; readonly retries: number; readonly minSeverity: Severity };
  };
  readonly feedback: Readonly<Record<Severity, ActionConfig>> & {
    readonly detections: Readonly<Partial<Record<DetectionId, Readonly<Partial<Record<Severity, ActionConfig>>>>>>;
  };
  readonly kafka: { readonly groupId: string; readonly stateTopic: string; readonly checkpointIntervalMs: number; readonly maxWaitMs: number; readonly expirySweepMs: number };
}

/** A partial config, as written in a file or by a test (deep partial of DetectorConfig). */
export type DetectorConfigInput = DeepPartial<DetectorConfig>;
type DeepPartial<T> = T extends readonly (infer _U)[] ? T : T extends object ? { -readonly [K in keyof T]?: DeepPartial<T[K]> } : T;

const validate = createAjv().compile(detectorConfigSchema);

/** Validates a config object (defaults filled in), or throws CONFIG_INVALID naming every bad field. */
export function parseDetectorConfig(input: unknown = {}, source = 'detector config'): DetectorConfig {
  const data = structuredClone(input ?? {}) as Record<string, unknown>;
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
  return deepFreeze(cfg);
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
