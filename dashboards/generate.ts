/**
 * Generates the committed observability artifacts from code:
 *   dashboards/*.json                          Grafana dashboards (Grafana Foundation SDK builders)
 *   deploy/grafana/dashboards.yaml             ConfigMaps: dashboards + Grafana provisioning
 *   deploy/grafana/provisioning/palisade.yaml  Grafana dashboard provider (file)
 *   deploy/prometheus/rules-configmap.yaml     the alert rules (dashboards/alerts/palisade-rules.yaml) as a ConfigMap
 *   docs/observability.md                      its metrics and alert rules tables (between markers)
 *
 *   node dashboards/generate.ts           write them
 *   node dashboards/generate.ts --check   exit 1 and name the stale files if the committed ones differ
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DASHBOARDS, grafanaConfigMaps, grafanaProvisioning, prometheusRulesConfigMap } from './index.ts';
import { observabilityDoc } from './docs.ts';
import { dashboardJson } from './lib/spec.ts';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const RULES_FILE = join(ROOT, 'dashboards/alerts/palisade-rules.yaml');

/** Every generated file: absolute path -> expected content. */
export async function generatedFiles(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const d of DASHBOARDS) out.set(join(ROOT, 'dashboards', d.file), dashboardJson(d));
  out.set(join(ROOT, 'deploy/grafana/dashboards.yaml'), grafanaConfigMaps());
  out.set(join(ROOT, 'deploy/grafana/provisioning/palisade.yaml'), grafanaProvisioning());
  out.set(join(ROOT, 'deploy/prometheus/rules-configmap.yaml'), prometheusRulesConfigMap(readFileSync(RULES_FILE, 'utf8')));
  const doc = join(ROOT, 'docs/observability.md');
  out.set(doc, await observabilityDoc(readFileSync(doc, 'utf8'), readFileSync(RULES_FILE, 'utf8')));
  return out;
}

/** Files whose committed content differs from what the code generates. */
export async function staleFiles(): Promise<string[]> {
  const stale: string[] = [];
  for (const [path, text] of await generatedFiles()) {
    if (!existsSync(path) || readFileSync(path, 'utf8') !== text) stale.push(relative(ROOT, path));
  }
  return stale;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--check')) {
    const stale = await staleFiles();
    if (stale.length > 0) {
      console.error(`stale generated files (run: node dashboards/generate.ts):\n  ${stale.join('\n  ')}`);
      process.exit(1);
    }
    console.log('generated dashboards and manifests are current');
  } else {
    for (const [path, text] of await generatedFiles()) {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, text);
      console.log(`wrote ${relative(ROOT, path)}`);
    }
  }
}
