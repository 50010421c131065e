/**
 * Validates Kubernetes objects offline against the vendored strict schemas
 * (test/fixtures/k8s-schemas): unknown fields, wrong types, missing required
 * fields. The `x-kubernetes-*` list rules that the API server enforces (unique
 * container, volume and port keys) are checked too, and a few pod rules that no
 * schema can express (podSpecProblems).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';

export const K8S_VERSIONS = ['v1.29.0', 'v1.37.0'] as const;
export type K8sVersion = (typeof K8S_VERSIONS)[number];

const DIR = join(import.meta.dirname, '..', '..', 'fixtures', 'k8s-schemas');
const CRD_KINDS: Readonly<Record<string, string>> = {
  'cert-manager.io/v1/Issuer': 'Issuer',
  'cert-manager.io/v1/ClusterIssuer': 'ClusterIssuer',
  'cert-manager.io/v1/Certificate': 'Certificate',
  'kafka.strimzi.io/v1beta2/KafkaTopic': 'KafkaTopic',
};

type Json = Record<string, unknown>;

function tupleKey(item: unknown, keys: readonly string[]): string {
  return JSON.stringify(keys.map((k) => (item && typeof item === 'object' ? (item as Json)[k] : undefined)));
}

function uniqueBy(data: unknown, key: (item: unknown) => string): boolean {
  if (!Array.isArray(data)) return true;
  const seen = new Set<string>();
  for (const item of data) {
    const k = key(item);
    if (seen.has(k)) return false;
    seen.add(k);
  }
  return true;
}

function makeAjv(): Ajv2020 {
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  ajv.addKeyword({ keyword: 'x-kubernetes-group-version-kind' });
  ajv.addKeyword({
    keyword: 'x-kubernetes-list-map-keys',
    schemaType: 'array',
    validate: (keys: string[], data: unknown) => uniqueBy(data, (item) => tupleKey(item, keys)),
    errors: false,
  });
  ajv.addKeyword({
    keyword: 'x-kubernetes-list-type',
    schemaType: 'string',
    validate: (type: string, data: unknown) => type !== 'set' || uniqueBy(data, (item) => JSON.stringify(item)),
    errors: false,
  });
  ajv.addKeyword({
    keyword: 'x-kubernetes-patch-merge-key',
    schemaType: 'string',
    // Where list-map-keys exist they are the rule (ports: containerPort+protocol);
    // otherwise the merge key (container, volume, mount path) must be unique.
    validate: (key: string, data: unknown, parentSchema?: Json) => parentSchema?.['x-kubernetes-list-map-keys'] !== undefined || uniqueBy(data, (item) => tupleKey(item, [key])),
    errors: false,
  });
  return ajv;
}

export interface K8sValidator {
  /** Problems with one object; [] when it is valid. */
  problems(obj: unknown): string[];
}

const cache = new Map<K8sVersion, K8sValidator>();

export function k8sValidator(version: K8sVersion): K8sValidator {
  const hit = cache.get(version);
  if (hit) return hit;
  const ajv = makeAjv();
  const doc = JSON.parse(readFileSync(join(DIR, `${version}.json`), 'utf8')) as { $id: string; $defs: Record<string, Json> };
  ajv.addSchema(doc);
  // The CRD schemas reference ObjectMeta of the oldest version.
  if (version !== 'v1.29.0') ajv.addSchema(JSON.parse(readFileSync(join(DIR, 'v1.29.0.json'), 'utf8')) as Json);
  const crds = JSON.parse(readFileSync(join(DIR, 'crds.json'), 'utf8')) as { $id: string };
  ajv.addSchema(crds);

  const byGvk = new Map<string, string>();
  for (const [name, def] of Object.entries(doc.$defs)) {
    for (const g of (def['x-kubernetes-group-version-kind'] as { group: string; version: string; kind: string }[] | undefined) ?? []) {
      byGvk.set(`${g.group ? `${g.group}/` : ''}${g.version}/${g.kind}`, `${doc.$id}#/$defs/${name}`);
    }
  }
  for (const [gvk, name] of Object.entries(CRD_KINDS)) byGvk.set(gvk, `${crds.$id}#/$defs/${name}`);

  const compiled = new Map<string, ValidateFunction>();
  const v: K8sValidator = {
    problems(obj) {
      if (!obj || typeof obj !== 'object') return ['not an object'];
      const o = obj as Json;
      const gvk = `${String(o['apiVersion'])}/${String(o['kind'])}`;
      const ref = byGvk.get(gvk);
      if (!ref) return [`${gvk}: no schema for this kind in Kubernetes ${version}`];
      let fn = compiled.get(ref);
      if (!fn) {
        fn = ajv.compile({ $ref: ref });
        compiled.set(ref, fn);
      }
      const out: string[] = [];
      if (!fn(obj)) {
        for (const e of fn.errors ?? []) {
          const extra = e.keyword === 'additionalProperties' ? ` "${String(e.params['additionalProperty'])}"` : '';
          out.push(`${gvk} ${e.instancePath || '/'}: ${e.keyword}${extra}: ${e.message ?? ''}`);
        }
      }
      const pod = podSpecOf(o);
      if (pod) {
        // A StatefulSet's claim templates are volumes of its pods too.
        const claims = o['kind'] === 'StatefulSet' ? (((o['spec'] as Json | undefined)?.['volumeClaimTemplates'] as Json[] | undefined) ?? []).map((c) => (c['metadata'] as Json | undefined)?.['name']) : [];
        out.push(...podSpecProblems(pod, claims).map((p) => `${gvk}: ${p}`));
      }
      return out;
    },
  };
  cache.set(version, v);
  return v;
}

function podSpecOf(o: Json): Json | undefined {
  const get = (x: unknown, ...path: string[]): unknown => path.reduce<unknown>((a, k) => (a && typeof a === 'object' ? (a as Json)[k] : undefined), x);
  const spec =
    o['kind'] === 'Pod' ? get(o, 'spec')
    : o['kind'] === 'CronJob' ? get(o, 'spec', 'jobTemplate', 'spec', 'template', 'spec')
    : get(o, 'spec', 'template', 'spec');
  return spec && typeof spec === 'object' && ['Pod', 'Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob'].includes(String(o['kind'])) ? (spec as Json) : undefined;
}

/** Pod rules of the API server's validation that the OpenAPI schema cannot state. */
export function podSpecProblems(spec: Json, extraVolumes: readonly unknown[] = []): string[] {
  const problems: string[] = [];
  const list = (k: string) => (Array.isArray(spec[k]) ? (spec[k] as Json[]) : []);
  const init = list('initContainers');
  const main = list('containers');
  const names = [...init, ...main, ...list('ephemeralContainers')].map((c) => c['name']);
  const dup = names.filter((n, i) => names.indexOf(n) !== i);
  if (dup.length > 0) problems.push(`duplicate container names ${JSON.stringify(dup)}`);
  const volumes = new Set([...list('volumes').map((v) => v['name']), ...extraVolumes]);
  for (const c of [...init, ...main]) {
    const cname = String(c['name']);
    for (const m of (c['volumeMounts'] as Json[] | undefined) ?? []) {
      if (!volumes.has(m['name'])) problems.push(`container ${cname}: volumeMount ${String(m['name'])} names no volume`);
    }
    for (const p of (c['ports'] as Json[] | undefined) ?? []) {
      const n = p['name'];
      if (typeof n === 'string' && (n.length > 15 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(n) || !/[a-z]/.test(n))) problems.push(`container ${cname}: port name ${n} is not an IANA_SVC_NAME`);
    }
    const probes = ['livenessProbe', 'readinessProbe', 'startupProbe'].filter((p) => c[p] !== undefined);
    const isInit = init.includes(c);
    if (isInit && c['restartPolicy'] !== undefined && c['restartPolicy'] !== 'Always') problems.push(`init container ${cname}: restartPolicy may only be Always`);
    if (isInit && c['restartPolicy'] !== 'Always' && probes.length > 0) problems.push(`init container ${cname}: probes ${probes.join(', ')} are only allowed on sidecars (restartPolicy Always)`);
    if (!isInit && c['restartPolicy'] !== undefined) problems.push(`container ${cname}: restartPolicy is only allowed on init containers`);
  }
  return problems;
}

/** Every problem of every object, under every vendored Kubernetes version. */
export function allProblems(objects: readonly unknown[]): string[] {
  const out: string[] = [];
  for (const version of K8S_VERSIONS) {
    const v = k8sValidator(version);
    objects.forEach((o, i) => out.push(...v.problems(o).map((p) => `[${version}] #${i + 1} ${p}`)));
  }
  return out;
}
