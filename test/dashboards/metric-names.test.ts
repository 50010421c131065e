/**
 * Every metric a dashboard panel or an alert rule reads is one the sidecar or the detector
 * exports (catches a renamed metric even for panels the Prometheus check cannot fill yet).
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { DASHBOARDS } from '../../dashboards/index.ts';
import { ROOT, RULES_FILE } from '../../dashboards/generate.ts';
import { createSidecarMetrics } from '../../src/telemetry/metrics.ts';
import { createDetectorMetrics } from '../../detectors/metrics.ts';

async function exported(registry: Registry): Promise<Set<string>> {
  const names = new Set<string>();
  for (const m of await registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(m.name + suffix);
  }
  return names;
}

const METRIC = /\b((?:palisade|process|nodejs)_[a-zA-Z0-9_]+)\b/g;

describe('metric names used by dashboards and alert rules', () => {
  it('all exist in the sidecar or detector exposition', async () => {
    const sidecar = new Registry();
    createSidecarMetrics(sidecar);
    const detector = new Registry();
    createDetectorMetrics(detector);
    const known = new Set([...(await exported(sidecar)), ...(await exported(detector))]);
    const used = new Map<string, string>();
    for (const d of DASHBOARDS) {
      const json = readFileSync(join(ROOT, 'dashboards', d.file), 'utf8');
      for (const m of json.matchAll(METRIC)) used.set(m[1]!, d.file);
    }
    const rules = parse(readFileSync(RULES_FILE, 'utf8')) as { groups: { rules: { alert: string; expr: string }[] }[] };
    for (const g of rules.groups) for (const r of g.rules) for (const m of r.expr.matchAll(METRIC)) used.set(m[1]!, r.alert);
    expect(used.size).toBeGreaterThan(30);
    const unknown = [...used].filter(([name]) => !known.has(name)).map(([name, where]) => `${name} (${where})`);
    expect(unknown).toEqual([]);
  });
});
