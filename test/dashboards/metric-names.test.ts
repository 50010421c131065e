/**
 * Every metric name the repository shows a reader (README, docs, dashboards, alert rules and their
 * unit tests, deploy manifests, bench and script output, comments and messages in the code) is one
 * the sidecar or the detector really exports. An alert written from a wrong name in the docs never
 * fires, and a renamed metric silently empties a panel: both fail here.
 *
 * The truth is the registries (what a scrape returns), not a source file: the metric definitions
 * may move between files.
 */
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { DASHBOARDS } from '../../dashboards/index.ts';
import { ROOT, RULES_FILE } from '../../dashboards/generate.ts';
import { createSidecarMetrics } from '../../src/sidecar/metrics.ts';
import { createDetectorMetrics } from '../../detectors/metrics.ts';

/** Names a scrape returns: the family, plus the series suffixes of histograms and summaries. */
async function exported(registry: Registry): Promise<Set<string>> {
  const names = new Set<string>();
  for (const m of await registry.getMetricsAsJSON()) {
    names.add(m.name);
    const type = String(m.type);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(m.name + suffix);
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(m.name + suffix);
  }
  return names;
}

async function knownNames(): Promise<Set<string>> {
  const sidecar = new Registry();
  createSidecarMetrics(sidecar);
  const detector = new Registry();
  createDetectorMetrics(detector);
  return new Set([...(await exported(sidecar)), ...(await exported(detector))]);
}

/** The families Palisade exports (its own, and the standard process/Node.js ones). */
const METRIC = /(?<![\w.$/-])((?:palisade|process|nodejs)_[a-z0-9_]*[a-z0-9])(?![\w-])/g;

/** Where a reader meets metric names. Test fixtures (third-party schemas) are not ours to check. */
const TREES = ['README.md', 'docs', 'dashboards', 'deploy', 'bench', 'scripts', 'src', 'detectors', 'bin'];
const TEXT = /\.(md|ts|json|ya?ml|sh|txt)$/;

function files(path: string): string[] {
  const abs = join(ROOT, path);
  if (!statSync(abs).isDirectory()) return [path];
  return readdirSync(abs, { recursive: true, encoding: 'utf8' })
    .filter((f) => TEXT.test(f) && !f.split('/').includes('node_modules'))
    .map((f) => join(path, f))
    .filter((f) => statSync(join(ROOT, f)).isFile());
}

/**
 * The metric names of one PromQL expression, whatever their prefix: identifiers that are not
 * functions, keywords, label names, durations or Grafana variables. A panel or rule reading a
 * metric of another family (a typo such as `palisade-requests_total` or a foreign exporter's) is
 * caught too.
 */
const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'inf', 'nan', 'le']);
function promqlMetrics(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '')
    .replace(/\[[^\]]*\]/g, '');
  const out: string[] = [];
  for (const m of s.matchAll(/(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:]|\s*\()/g)) {
    const id = m[1]!;
    if (!PROMQL_WORDS.has(id.toLowerCase())) out.push(id);
  }
  return out;
}

describe('metric names shown to readers', () => {
  it('the PromQL scanner finds metrics and nothing else', () => {
    expect(promqlMetrics('histogram_quantile(0.99, sum by (le, route) (rate(palisade_upstream_duration_seconds_bucket{job=~"$job"}[$__rate_interval])))')).toEqual(['palisade_upstream_duration_seconds_bucket']);
    expect(promqlMetrics('sum(rate(x_total[5m] offset 5m)) / on (job) group_left (a) up > bool 0 unless absent(foo{a="b"})')).toEqual(['x_total', 'up', 'foo']);
  });

  it('every name in the docs, dashboards, alert rules, manifests and code text is one the sidecar or the detector exports', async () => {
    const known = await knownNames();
    const used = new Map<string, Set<string>>();
    const note = (name: string, where: string) => {
      const set = used.get(name) ?? new Set<string>();
      set.add(where);
      used.set(name, set);
    };
    const scanned = TREES.flatMap(files);
    // A large, known part of the repository is read (a moved folder must not pass the test by emptiness).
    for (const must of ['README.md', 'docs/kafka.md', 'docs/observability.md', 'dashboards/alerts/palisade-rules.yaml', 'dashboards/alerts/palisade-rules.test.yaml', 'deploy/prometheus/rules-configmap.yaml']) expect(scanned).toContain(must);
    for (const d of DASHBOARDS) expect(scanned).toContain(join('dashboards', d.file));
    for (const f of scanned) {
      const text = readFileSync(join(ROOT, f), 'utf8');
      text.split('\n').forEach((line, i) => {
        for (const m of line.matchAll(METRIC)) note(m[1]!, `${f}:${i + 1}`);
      });
    }
    // Queries are read whole, so a metric of any family is checked.
    for (const d of DASHBOARDS) {
      const json = readFileSync(join(ROOT, 'dashboards', d.file), 'utf8');
      for (const m of json.matchAll(/"(?:expr|definition)":\s*"((?:[^"\\]|\\.)*)"/g)) {
        const expr = JSON.parse(`"${m[1]!}"`) as string;
        const inner = /^label_values\((.*),\s*\w+\)$/.exec(expr)?.[1] ?? expr;
        for (const name of promqlMetrics(inner)) note(name, `dashboards/${d.file}`);
      }
    }
    const rules = parse(readFileSync(RULES_FILE, 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
    for (const g of rules.groups) for (const r of g.rules) for (const name of promqlMetrics(r.expr)) note(name, `alert ${r.alert}`);

    expect(used.size).toBeGreaterThan(40);
    const unknown = [...used].filter(([name]) => !known.has(name)).map(([name, where]) => `${name} (${[...where].slice(0, 3).join(', ')})`);
    expect(unknown).toEqual([]);
  });

  it('the family suffixes count only for the kind that has them', async () => {
    const known = await knownNames();
    expect(known.has('palisade_request_duration_seconds_bucket')).toBe(true);
    expect(known.has('palisade_requests_total_bucket')).toBe(false);
    expect(known.has('palisade_decision_spool_bytes_count')).toBe(false);
  });
});
