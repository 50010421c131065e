/**
 * Finds the pod inside each kind of Kubernetes object and injects it. Kinds that
 * carry no pod pass through unchanged; anything else is refused, because a kind
 * we do not know may well run pods we would silently leave unprotected.
 */
import { InjectError } from './errors.ts';
import type { InjectOptions } from './options.ts';
import { injectPod, isObject, type PodResult, type PortWiring } from './pod.ts';
import type { JsonObject } from './sidecar.ts';

interface WorkloadKind {
  readonly apiVersions: readonly string[];
  /** Path from the object to its pod template ({metadata, spec}); [] for a Pod. */
  readonly template: readonly string[];
  readonly defaultRestartPolicy: 'Always' | 'OnFailure' | 'Never';
}

export const WORKLOAD_KINDS: Readonly<Record<string, WorkloadKind>> = {
  Pod: { apiVersions: ['v1'], template: [], defaultRestartPolicy: 'Always' },
  Deployment: { apiVersions: ['apps/v1'], template: ['spec', 'template'], defaultRestartPolicy: 'Always' },
  StatefulSet: { apiVersions: ['apps/v1'], template: ['spec', 'template'], defaultRestartPolicy: 'Always' },
  DaemonSet: { apiVersions: ['apps/v1'], template: ['spec', 'template'], defaultRestartPolicy: 'Always' },
  ReplicaSet: { apiVersions: ['apps/v1'], template: ['spec', 'template'], defaultRestartPolicy: 'Always' },
  // A Job must set restartPolicy itself (Never or OnFailure); Never is the safe reading.
  Job: { apiVersions: ['batch/v1'], template: ['spec', 'template'], defaultRestartPolicy: 'Never' },
  CronJob: { apiVersions: ['batch/v1'], template: ['spec', 'jobTemplate', 'spec', 'template'], defaultRestartPolicy: 'Never' },
};

/** Built-in kinds that hold no pod: copied through as they are (Services may get their target port rewired). */
export const PASS_THROUGH_KINDS: ReadonlySet<string> = new Set([
  'Service', 'ConfigMap', 'Secret', 'ServiceAccount', 'Namespace', 'Endpoints', 'EndpointSlice',
  'Ingress', 'IngressClass', 'NetworkPolicy', 'PodDisruptionBudget', 'HorizontalPodAutoscaler',
  'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding', 'PersistentVolumeClaim', 'PersistentVolume',
  'StorageClass', 'LimitRange', 'ResourceQuota', 'PriorityClass', 'CustomResourceDefinition',
  'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration', 'PodTemplate',
]);

export interface InjectedPod {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, unknown>>;
  readonly wiring: PortWiring;
}

export type ObjectResult =
  | { readonly status: 'injected'; readonly object: JsonObject; readonly pod: InjectedPod }
  | { readonly status: 'skipped'; readonly object: JsonObject; readonly reason: string; readonly pod: InjectedPod | undefined }
  | { readonly status: 'passed-through'; readonly object: JsonObject };

export function describe(obj: JsonObject): string {
  const meta = isObject(obj['metadata']) ? obj['metadata'] : {};
  const ns = typeof meta['namespace'] === 'string' ? `${meta['namespace']}/` : '';
  const name = typeof meta['name'] === 'string' ? meta['name'] : typeof meta['generateName'] === 'string' ? `${meta['generateName']}*` : '(unnamed)';
  return `${String(obj['kind'])} ${ns}${name}`;
}

export function namespaceOf(obj: JsonObject): string {
  const meta = obj['metadata'];
  return isObject(meta) && typeof meta['namespace'] === 'string' ? meta['namespace'] : '';
}

export function checkObject(obj: unknown, where: string): asserts obj is JsonObject {
  if (!isObject(obj)) throw new InjectError('INJECT_NOT_AN_OBJECT', `${where}: not a Kubernetes object (expected a mapping with apiVersion and kind)`);
  if (typeof obj['apiVersion'] !== 'string' || obj['apiVersion'] === '') throw new InjectError('INJECT_NOT_AN_OBJECT', `${where}: missing apiVersion`);
  if (typeof obj['kind'] !== 'string' || obj['kind'] === '') throw new InjectError('INJECT_NOT_AN_OBJECT', `${where}: missing kind`);
}

export function injectObject(obj: JsonObject, opts: InjectOptions, where: string, skipUnknownKinds: boolean): ObjectResult {
  const kind = obj['kind'] as string;
  const apiVersion = obj['apiVersion'] as string;
  const w = WORKLOAD_KINDS[kind];
  if (w === undefined) {
    if (PASS_THROUGH_KINDS.has(kind) || skipUnknownKinds) return { status: 'passed-through', object: obj };
    throw new InjectError('INJECT_KIND_UNSUPPORTED', `${where}: unsupported kind ${kind} (${apiVersion}); palisade inject handles ${Object.keys(WORKLOAD_KINDS).join(', ')} and passes built-in kinds without pods through. Use --skip-unknown-kinds to copy other kinds through unchanged`);
  }
  if (!w.apiVersions.includes(apiVersion)) {
    throw new InjectError('INJECT_KIND_UNSUPPORTED', `${where}: ${kind} has apiVersion ${apiVersion}; expected ${w.apiVersions.join(' or ')}`);
  }
  let holder: unknown = obj;
  for (const key of w.template) {
    holder = isObject(holder) ? holder[key] : undefined;
  }
  if (!isObject(holder) || !isObject(holder['spec'])) {
    const path = w.template.length > 0 ? `${w.template.join('.')}.spec` : 'spec';
    throw new InjectError('INJECT_NOT_AN_OBJECT', `${where}: ${path} is missing or not a mapping`);
  }
  const templateMeta = holder['metadata'];
  if (templateMeta !== undefined && !isObject(templateMeta)) throw new InjectError('INJECT_NOT_AN_OBJECT', `${where}: pod metadata is not a mapping`);
  const result: PodResult = injectPod({ metadata: templateMeta, spec: holder['spec'] }, opts, { where, defaultRestartPolicy: w.defaultRestartPolicy });
  const namespace = namespaceOf(obj);
  if (result.status === 'skipped') {
    return { status: 'skipped', object: obj, reason: result.reason, pod: undefined };
  }
  const out = structuredClone(obj);
  let target: JsonObject = out;
  for (const key of w.template) target = target[key] as JsonObject;
  target['metadata'] = result.metadata;
  target['spec'] = result.spec;
  const labels = isObject(result.metadata['labels']) ? result.metadata['labels'] : {};
  return { status: 'injected', object: out, pod: { namespace, labels, wiring: result.wiring } };
}

