/**
 * A real Prometheus (Debian's `prometheus` package: /usr/bin/prometheus, /usr/bin/promtool) for
 * tests: own config and data directory in a temp dir, loopback port, killed on close. Installed by
 * `bash scripts/ensure-apt.sh prometheus` (scripts/test.sh does it before the tests).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { startReadyServer } from '../../support/ready-server.ts';

function binary(name: string): string {
  for (const dir of ['/usr/bin', '/usr/local/bin', '/bin']) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  throw new Error(`${name} not found: install it with \`bash scripts/ensure-apt.sh prometheus\``);
}
export const promtoolPath = (): string => binary('promtool');
export const prometheusPath = (): string => binary('prometheus');

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export interface ScrapeJob {
  readonly job: string;
  readonly targets: readonly string[];
}

export interface PromSample {
  readonly metric: Record<string, string>;
  readonly value?: [number, string];
  readonly values?: [number, string][];
}

export interface PromResult {
  readonly status: 'success' | 'error';
  readonly errorType?: string;
  readonly error?: string;
  readonly data?: { resultType: string; result: PromSample[] };
}

export interface PromAlert {
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly state: 'pending' | 'firing';
  readonly value: string;
}

export interface Prometheus {
  readonly url: string;
  /** GET /api/v1/query; returns the API answer as is (status error included). */
  query(expr: string, time?: number): Promise<PromResult>;
  /** GET /api/v1/query_range over [start, end] (unix seconds). */
  queryRange(expr: string, start: number, end: number, stepSeconds: number): Promise<PromResult>;
  alerts(): Promise<PromAlert[]>;
  /** GET /api/v1/label/<name>/values?match[]=<selector> (what Grafana's label_values() variable query runs). */
  labelValues(label: string, match: string): Promise<string[]>;
  /** Active scrape targets and their health. */
  targets(): Promise<{ labels: Record<string, string>; health: string; lastError: string }[]>;
  close(): Promise<void>;
}

export interface PrometheusOptions {
  readonly jobs: readonly ScrapeJob[];
  /** Rule files (absolute paths) to load. */
  readonly ruleFiles?: readonly string[];
  /** Default 1s: tests wait for a few scrapes, not minutes. */
  readonly scrapeInterval?: string;
  readonly evaluationInterval?: string;
}

export async function startPrometheus(options: PrometheusOptions): Promise<Prometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'palisade-prometheus-'));
  const config = {
    global: { scrape_interval: options.scrapeInterval ?? '1s', scrape_timeout: '1s', evaluation_interval: options.evaluationInterval ?? '1s' },
    ...(options.ruleFiles ? { rule_files: [...options.ruleFiles] } : {}),
    scrape_configs: options.jobs.map((j) => ({ job_name: j.job, metrics_path: '/metrics', static_configs: [{ targets: [...j.targets] }] })),
  };
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, stringify(config));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const server = await startReadyServer('prometheus', prometheusPath(), [`--config.file=${configFile}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn', '--storage.tsdb.retention.time=1h'], url);

  const api = async <T>(path: string, params: Record<string, string>): Promise<T> => {
    const res = await fetch(`${url}${path}?${new URLSearchParams(params).toString()}`);
    return (await res.json()) as T;
  };
  return {
    url,
    query: (expr, time) => api<PromResult>('/api/v1/query', { query: expr, ...(time !== undefined ? { time: String(time) } : {}) }),
    queryRange: (expr, start, end, step) => api<PromResult>('/api/v1/query_range', { query: expr, start: String(start), end: String(end), step: String(step) }),
    labelValues: async (label, match) => (await api<{ data: string[] }>(`/api/v1/label/${encodeURIComponent(label)}/values`, { 'match[]': match })).data,
    alerts: async () => (await api<{ data: { alerts: PromAlert[] } }>('/api/v1/alerts', {})).data.alerts,
    targets: async () => (await api<{ data: { activeTargets: { labels: Record<string, string>; health: string; lastError: string }[] } }>('/api/v1/targets', {})).data.activeTargets,
    async close() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Grafana's regex escaping of a multi-value variable's values in a Prometheus query. */
function escapeForRegex(v: string): string {
  return v.replace(/\\/g, '\\\\\\\\').replace(/[$^*{}[\]'+?.()|]/g, '\\\\$&');
}

/** What Grafana substitutes for a multi-value variable set to "All" (no custom all value): (v1|v2|...). */
export function grafanaAllValue(values: readonly string[]): string {
  return values.length === 1 ? escapeForRegex(values[0]!) : `(${values.map(escapeForRegex).join('|')})`;
}

/**
 * Replaces Grafana's variables in a panel query as Grafana does: $job and $instance -> their
 * "All" value (see grafanaAllValue), $__rate_interval, $__interval and $__range -> durations.
 */
export function expandGrafanaVariables(expr: string, v: { rateInterval: string; range: string; job: string; instance: string }): string {
  return expr
    .replaceAll('$__rate_interval', v.rateInterval)
    .replaceAll('$__interval', v.rateInterval)
    .replaceAll('$__range', v.range)
    .replaceAll('$job', v.job)
    .replaceAll('$instance', v.instance);
}
