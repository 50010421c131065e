/**
 * The generated parts of docs/observability.md: the metrics tables (from the registries the
 * sidecar and the detector serve) and the alert rules table (from the rules file). Each lives
 * between `<!-- name:start -->` and `<!-- name:end -->` markers; dashboards/generate.ts rewrites
 * them and the dashboards test checks they are current.
 */
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { createSidecarMetrics } from '../src/sidecar/metrics.ts';
import { createDetectorMetrics } from '../detectors/metrics.ts';

interface MetricJson {
  name: string;
  help: string;
  type: string;
  values: { labels: Record<string, string | number> }[];
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

async function table(registry: Registry, labelsOf: (name: string) => readonly string[]): Promise<string> {
  const rows = ((await registry.getMetricsAsJSON()) as unknown as MetricJson[])
    .filter((m) => m.name.startsWith('palisade_'))
    .map((m) => {
      const labels = labelsOf(m.name).filter((l) => l !== 'le');
      return `| \`${m.name}\` | ${m.type} | ${labels.length ? labels.map((l) => `\`${l}\``).join(', ') : ''} | ${cell(m.help)} |`;
    });
  return ['| Metric | Type | Labels | Meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

/** Label names per metric, as declared (prom-client keeps them on the metric object). */
function declaredLabels(registry: Registry): (name: string) => readonly string[] {
  return (name) => (registry.getSingleMetric(name) as unknown as { labelNames?: string[] } | undefined)?.labelNames ?? [];
}

export async function metricsTables(): Promise<{ sidecar: string; detector: string }> {
  const s = new Registry();
  createSidecarMetrics(s, { processMetrics: false });
  const d = new Registry();
  createDetectorMetrics(d, { processMetrics: false });
  return { sidecar: await table(s, declaredLabels(s)), detector: await table(d, declaredLabels(d)) };
}

export function alertsTable(rulesYaml: string): string {
  const doc = parse(rulesYaml) as { groups: { name: string; rules: { alert: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }[] }[] };
  const rows: string[] = [];
  for (const g of doc.groups) {
    for (const r of g.rules) {
      rows.push(`| \`${r.alert}\` | ${r.labels?.['severity'] ?? ''} | ${r.for ?? '0m'} | \`${cell(r.expr.trim().replace(/\s+/g, ' '))}\` | ${cell(r.annotations?.['summary'] ?? '')} |`);
    }
  }
  return ['| Alert | Severity | For | Expression | Summary |', '| --- | --- | --- | --- | --- |', ...rows].join('\n');
}

/** Replaces the text between `<!-- name:start -->` and `<!-- name:end -->`. */
export function fillSection(doc: string, name: string, content: string): string {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  if (i < 0 || j < i) throw new Error(`docs/observability.md: markers ${start} ... ${end} missing`);
  return `${doc.slice(0, i + start.length)}\n${content}\n${doc.slice(j)}`;
}

export async function observabilityDoc(current: string, rulesYaml: string): Promise<string> {
  const t = await metricsTables();
  let doc = fillSection(current, 'sidecar-metrics', t.sidecar);
  doc = fillSection(doc, 'detector-metrics', t.detector);
  return fillSection(doc, 'alert-rules', alertsTable(rulesYaml));
}
