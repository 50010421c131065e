/**
 * Regenerates the Kubernetes JSON Schemas vendored in test/fixtures/k8s-schemas/.
 *
 * The tests validate every manifest and every `palisade inject` output against the
 * Kubernetes OpenAPI schemas with no network, so the schemas are checked in as data.
 * Source: the "-local-strict" schemas of the PyPI package kubernetes-validate
 * (Apache-2.0; generated from the Kubernetes OpenAPI spec, with additionalProperties
 * false so that a misspelt field is an error, as `kubectl apply --validate=strict` does).
 * The full definitions file is 1.4 MB per version; we keep only the definitions the
 * kinds below reach, and drop descriptions, which the tests never read.
 *
 * Usage (by hand, when moving to a newer Kubernetes version):
 *   pip download --no-deps -d /tmp/kv kubernetes-validate
 *   (cd /tmp/kv && python3 -m zipfile -e kubernetes_validate-*.whl x)
 *   node scripts/vendor-k8s-schemas.ts /tmp/kv/x/kubernetes_validate/kubernetes-json-schema v1.29.0 v1.37.0
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

type Schema = Record<string, unknown>;

/** The kinds Palisade's manifests and injector produce or pass through. */
const ROOT_KINDS: readonly string[] = [
  'io.k8s.api.apps.v1.Deployment',
  'io.k8s.api.apps.v1.StatefulSet',
  'io.k8s.api.apps.v1.DaemonSet',
  'io.k8s.api.apps.v1.ReplicaSet',
  'io.k8s.api.batch.v1.Job',
  'io.k8s.api.batch.v1.CronJob',
  'io.k8s.api.core.v1.Pod',
  'io.k8s.api.core.v1.Service',
  'io.k8s.api.core.v1.ConfigMap',
  'io.k8s.api.core.v1.Secret',
  'io.k8s.api.core.v1.Namespace',
  'io.k8s.api.core.v1.ServiceAccount',
  'io.k8s.api.networking.v1.NetworkPolicy',
  'io.k8s.api.networking.v1.Ingress',
  'io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler',
  'io.k8s.api.policy.v1.PodDisruptionBudget',
  'io.k8s.api.rbac.v1.Role',
  'io.k8s.api.rbac.v1.RoleBinding',
  'io.k8s.api.rbac.v1.ClusterRole',
  'io.k8s.api.rbac.v1.ClusterRoleBinding',
  'io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration',
];

/** Extension keywords the test validator implements or uses; the rest are dropped. */
const KEEP_EXTENSIONS = new Set(['x-kubernetes-group-version-kind', 'x-kubernetes-list-type', 'x-kubernetes-list-map-keys', 'x-kubernetes-patch-merge-key']);

const SUBSCHEMA_KEYS = new Set(['items', 'additionalProperties', 'not']);
const SUBSCHEMA_ARRAY_KEYS = new Set(['oneOf', 'anyOf', 'allOf']);

/** Walks a schema by JSON Schema structure (so a property *named* "description" survives). */
function clean(schema: unknown, refs: Set<string>): unknown {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return schema;
  const out: Schema = {};
  for (const [key, value] of Object.entries(schema as Schema)) {
    if (key === 'description') continue;
    if (key.startsWith('x-kubernetes-') && !KEEP_EXTENSIONS.has(key)) continue;
    if (key === '$ref' && typeof value === 'string') {
      const name = value.replace(/^.*#\/\$defs\//, '');
      refs.add(name);
      out[key] = `#/$defs/${name}`;
    } else if (key === 'properties' || key === 'patternProperties') {
      const props: Schema = {};
      for (const [p, s] of Object.entries(value as Schema)) props[p] = clean(s, refs);
      out[key] = props;
    } else if (SUBSCHEMA_KEYS.has(key)) {
      out[key] = typeof value === 'boolean' ? value : clean(value, refs);
    } else if (SUBSCHEMA_ARRAY_KEYS.has(key)) {
      out[key] = (value as unknown[]).map((s) => clean(s, refs));
    } else {
      out[key] = value;
    }
  }
  return out;
}

function vendor(sourceRoot: string, version: string, outDir: string): void {
  const file = join(sourceRoot, `${version}-local-strict`, '_definitions.json');
  const all = (JSON.parse(readFileSync(file, 'utf8')) as { $defs: Record<string, unknown> }).$defs;
  const kept: Record<string, unknown> = {};
  const queue = [...ROOT_KINDS];
  while (queue.length > 0) {
    const name = queue.pop()!;
    if (name in kept) continue;
    const def = all[name];
    if (def === undefined) throw new Error(`${version}: definition ${name} not found in ${file}`);
    const refs = new Set<string>();
    kept[name] = clean(def, refs);
    for (const r of refs) if (!(r in kept)) queue.push(r);
  }
  const sorted = Object.fromEntries(Object.keys(kept).sort().map((k) => [k, kept[k]]));
  const doc = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: `https://palisade.dev/schemas/kubernetes/${version}.json`,
    $comment: `Pruned from kubernetes-validate ${version}-local-strict by scripts/vendor-k8s-schemas.ts; do not edit by hand.`,
    $defs: sorted,
  };
  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, `${version}.json`);
  writeFileSync(out, JSON.stringify(doc) + '\n');
  process.stdout.write(`${out}: ${Object.keys(sorted).length} definitions\n`);
}

const [sourceRoot, ...versions] = process.argv.slice(2);
if (!sourceRoot || versions.length === 0) {
  process.stderr.write('usage: node scripts/vendor-k8s-schemas.ts SCHEMA_ROOT VERSION...\n');
  process.exit(2);
}
const outDir = resolve(import.meta.dirname, '..', 'test', 'fixtures', 'k8s-schemas');
for (const v of versions) vendor(sourceRoot, v, outDir);
