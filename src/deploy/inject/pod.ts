/**
 * Injects the sidecar into one pod (a Pod, or a workload's pod template). Pure:
 * returns new objects, never touches its input. Idempotent: a pod that carries
 * the injector's mark is first stripped of what the injector added, then
 * injected again, so the same options give the same pod, and new options
 * (a new image) update it.
 */
import { podSettings } from './annotations.ts';
import { InjectError } from './errors.ts';
import type { InjectOptions } from './options.ts';
import { ANNOTATIONS, DEFAULT_CONTAINER_ANNOTATION, SIDECAR_NAME, SIDECAR_VOLUMES, type InjectMode } from './names.ts';
import { buildSidecar, type JsonObject } from './sidecar.ts';

export interface PodInput {
  readonly metadata: JsonObject | undefined;
  readonly spec: JsonObject;
}

export type PodResult =
  | { readonly status: 'injected'; readonly metadata: JsonObject; readonly spec: JsonObject; readonly wiring: PortWiring }
  | { readonly status: 'skipped'; readonly reason: string };

/** How traffic reaches the app once injected, for pointing Services at the sidecar. */
export interface PortWiring {
  readonly upstreamPort: number;
  /** Names the app container gave to the upstream port (a Service may target it by name). */
  readonly upstreamPortNames: readonly string[];
  readonly listenPort: number;
}

export interface PodContext {
  /** Where the pod is, for error messages: "deploy.yaml: Deployment shop/orders". */
  readonly where: string;
  /** The pod's restartPolicy as the workload kind forces it, when the spec omits it. */
  readonly defaultRestartPolicy: 'Always' | 'OnFailure' | 'Never';
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function list(spec: JsonObject, key: string, where: string): JsonObject[] {
  const v = spec[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every(isObject)) throw new InjectError('INJECT_NOT_AN_OBJECT', `${where}: spec.${key} must be a list of objects`);
  return v;
}

export function annotationsOf(metadata: JsonObject | undefined): JsonObject {
  const a = metadata?.['annotations'];
  return isObject(a) ? a : {};
}

export function isInjected(metadata: JsonObject | undefined): boolean {
  return typeof annotationsOf(metadata)[ANNOTATIONS.status] === 'string';
}

/** Opt-in for the webhook: the pod's label or annotation palisade.dev/inject is "enabled". */
export function optedIn(metadata: JsonObject | undefined): boolean {
  const labels = isObject(metadata?.['labels']) ? (metadata['labels'] as JsonObject) : {};
  return labels[ANNOTATIONS.inject] === 'enabled' || annotationsOf(metadata)[ANNOTATIONS.inject] === 'enabled';
}

export function optedOut(metadata: JsonObject | undefined): boolean {
  const labels = isObject(metadata?.['labels']) ? (metadata['labels'] as JsonObject) : {};
  return labels[ANNOTATIONS.inject] === 'disabled' || annotationsOf(metadata)[ANNOTATIONS.inject] === 'disabled';
}

export function injectPod(input: PodInput, opts: InjectOptions, ctx: PodContext): PodResult {
  const { where } = ctx;
  if (optedOut(input.metadata)) return { status: 'skipped', reason: `${ANNOTATIONS.inject} is "disabled"` };

  const metadata: JsonObject = structuredClone(input.metadata ?? {});
  const spec: JsonObject = structuredClone(input.spec);
  const annotations: JsonObject = { ...annotationsOf(metadata) };
  const reinject = typeof annotations[ANNOTATIONS.status] === 'string';

  let initContainers = list(spec, 'initContainers', where);
  let containers = list(spec, 'containers', where);
  let volumes = list(spec, 'volumes', where);
  const ephemeral = list(spec, 'ephemeralContainers', where);

  if (reinject) {
    initContainers = initContainers.filter((c) => c['name'] !== SIDECAR_NAME);
    containers = containers.filter((c) => c['name'] !== SIDECAR_NAME);
    volumes = volumes.filter((v) => !(SIDECAR_VOLUMES as readonly unknown[]).includes(v['name']));
  } else {
    for (const [key, items] of [['initContainers', initContainers], ['containers', containers], ['ephemeralContainers', ephemeral]] as const) {
      if (items.some((c) => c['name'] === SIDECAR_NAME)) {
        throw new InjectError('INJECT_NAME_CONFLICT', `${where}: spec.${key} already has a container named "${SIDECAR_NAME}" that palisade did not inject; rename it, or remove it if it is a hand-made sidecar`);
      }
    }
    const taken = volumes.map((v) => v['name']).filter((n) => (SIDECAR_VOLUMES as readonly unknown[]).includes(n));
    if (taken.length > 0) {
      throw new InjectError('INJECT_NAME_CONFLICT', `${where}: spec.volumes already has ${taken.map((n) => `"${String(n)}"`).join(', ')}, a name the sidecar needs; rename the volume`);
    }
  }

  if (containers.length === 0) throw new InjectError('INJECT_NOT_AN_OBJECT', `${where}: spec.containers is empty; there is no app to protect`);
  if (spec['hostNetwork'] === true) {
    throw new InjectError('INJECT_POD_UNSUPPORTED', `${where}: the pod uses hostNetwork; the sidecar would listen on the node's ports and the app's port would be reachable from the network, so palisade does not inject it`);
  }
  const mode: InjectMode = opts.mode;
  const restartPolicy = typeof spec['restartPolicy'] === 'string' ? spec['restartPolicy'] : ctx.defaultRestartPolicy;
  if (mode === 'container' && restartPolicy !== 'Always') {
    throw new InjectError('INJECT_POD_UNSUPPORTED', `${where}: restartPolicy ${restartPolicy} (a Job) with --mode container: a plain sidecar container never exits, so the Job would never complete; use --mode native (Kubernetes 1.29+)`);
  }

  const s = podSettings(annotations, opts, where);

  // Which port does the app serve? The annotation says, or the app's first declared port.
  const appPorts: { port: number; name: string | undefined; container: string }[] = [];
  for (const c of [...containers, ...initContainers]) {
    for (const p of list(c, 'ports', `${where}: container "${String(c['name'])}"`)) {
      if (typeof p['containerPort'] === 'number') appPorts.push({ port: p['containerPort'], name: typeof p['name'] === 'string' ? p['name'] : undefined, container: String(c['name']) });
    }
  }
  const firstAppPort = appPorts.find((p) => containers.some((c) => c['name'] === p.container));
  const upstreamPort = s.upstreamPort ?? firstAppPort?.port;
  if (upstreamPort === undefined) {
    throw new InjectError('INJECT_UPSTREAM_UNKNOWN', `${where}: no container declares a port, so palisade cannot tell where the app listens; add annotation ${ANNOTATIONS.upstreamPort}: "<port>" to the pod template`);
  }
  for (const [what, port, annotation] of [['listen', s.listenPort, ANNOTATIONS.listenPort], ['admin', s.adminPort, ANNOTATIONS.adminPort]] as const) {
    const clash = appPorts.find((p) => p.port === port);
    if (clash || port === upstreamPort) {
      const who = clash ? `container "${clash.container}" already uses port ${port}` : `the app listens on port ${port}`;
      throw new InjectError('INJECT_PORT_CONFLICT', `${where}: ${who}, which is the sidecar's ${what} port; set annotation ${annotation} to a free port`);
    }
  }

  const sidecar = buildSidecar(s, opts, upstreamPort, mode);
  if (mode === 'native') {
    initContainers = [sidecar.container, ...initContainers];
    containers = [...containers];
  } else {
    containers = [...containers, sidecar.container];
    // So that `kubectl logs/exec` without -c still pick the app, not the sidecar.
    if (annotations[DEFAULT_CONTAINER_ANNOTATION] === undefined) annotations[DEFAULT_CONTAINER_ANNOTATION] = String(containers[0]!['name']);
  }
  // Keep an explicit (even empty) initContainers list; add none that was absent.
  if (initContainers.length > 0 || spec['initContainers'] !== undefined) spec['initContainers'] = initContainers;
  spec['containers'] = containers;
  spec['volumes'] = [...volumes, ...sidecar.volumes];
  annotations[ANNOTATIONS.status] = mode;
  metadata['annotations'] = annotations;

  return {
    status: 'injected',
    metadata,
    spec,
    wiring: {
      upstreamPort,
      upstreamPortNames: appPorts.filter((p) => p.port === upstreamPort && p.name !== undefined).map((p) => p.name!),
      listenPort: s.listenPort,
    },
  };
}
