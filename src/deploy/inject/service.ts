/**
 * Points a Service at the sidecar: a Service port whose target is the app's port
 * (by number or by name) is retargeted to the sidecar's TLS port, so callers
 * reach the app only through Palisade. The original targets are kept in an
 * annotation; each run restores them first, which makes the rewrite idempotent
 * and follows a changed listen port.
 */
import { InjectError } from './errors.ts';
import { deepEqual } from './json-patch.ts';
import { ANNOTATIONS } from './names.ts';
import { annotationsOf, isObject } from './pod.ts';
import type { JsonObject } from './sidecar.ts';
import type { InjectedPod } from './workload.ts';

function portKey(p: JsonObject): string {
  return typeof p['name'] === 'string' && p['name'] !== '' ? p['name'] : String(p['port']);
}

export function rewireService(svc: JsonObject, pods: readonly InjectedPod[], namespace: string, where: string): JsonObject {
  const out = structuredClone(svc);
  const spec = out['spec'];
  if (!isObject(spec) || !Array.isArray(spec['ports'])) return svc;
  const ports = spec['ports'].filter(isObject);
  const metadata: JsonObject = isObject(out['metadata']) ? out['metadata'] : {};
  const annotations: JsonObject = { ...annotationsOf(metadata) };

  const saved = annotations[ANNOTATIONS.originalTargetPorts];
  if (saved !== undefined) {
    let originals: unknown;
    try {
      originals = JSON.parse(String(saved));
    } catch {
      originals = undefined;
    }
    if (!isObject(originals)) throw new InjectError('INJECT_ANNOTATION_INVALID', `${where}: annotation ${ANNOTATIONS.originalTargetPorts} is not a JSON object; remove it and set the ports' targetPort by hand`);
    for (const p of ports) {
      const key = portKey(p);
      if (!Object.hasOwn(originals, key)) continue;
      const original = originals[key];
      if (original === null) delete p['targetPort'];
      else p['targetPort'] = original;
    }
    delete annotations[ANNOTATIONS.originalTargetPorts];
  }

  const selector = spec['selector'];
  const matches = isObject(selector) && Object.keys(selector).length > 0 && spec['type'] !== 'ExternalName'
    ? pods.filter((pod) => pod.namespace === namespace && Object.entries(selector).every(([k, v]) => pod.labels[k] === v))
    : [];
  const originals: JsonObject = {};
  for (const p of ports) {
    const target = p['targetPort'] ?? p['port'];
    for (const pod of matches) {
      const w = pod.wiring;
      const hits = typeof target === 'number' ? target === w.upstreamPort : typeof target === 'string' && w.upstreamPortNames.includes(target);
      if (!hits) continue;
      originals[portKey(p)] = p['targetPort'] ?? null;
      p['targetPort'] = w.listenPort;
      break;
    }
  }
  if (Object.keys(originals).length > 0) annotations[ANNOTATIONS.originalTargetPorts] = JSON.stringify(originals);
  if (!deepEqual(annotations, annotationsOf(metadata))) {
    if (Object.keys(annotations).length > 0) metadata['annotations'] = annotations;
    else delete metadata['annotations'];
    out['metadata'] = metadata;
  }
  return out;
}
