/**
 * One AdmissionReview (admission.k8s.io/v1) in, one out. Pure, so the HTTPS
 * server stays thin and the decision logic is the injector's, shared with
 * `palisade inject`.
 *
 * Decisions, and why:
 * - not a pod CREATE, not opted in, or already injected: allowed, no patch;
 * - opted in and injectable: allowed with a JSONPatch;
 * - opted in but the pod cannot be injected (a name or port clash, a bad
 *   palisade.dev/* annotation): denied with the injector's message. The owner
 *   asked for protection; starting the pod unprotected would be a silent hole.
 * A malformed review is not a decision: it is a BadReview (HTTP 400), and the
 * API server then applies the webhook's failurePolicy.
 */
import { InjectError } from '../inject/errors.ts';
import { diff, type PatchOp } from '../inject/json-patch.ts';
import type { InjectOptions } from '../inject/options.ts';
import { SIDECAR_NAME } from '../inject/names.ts';
import { injectPod, isInjected, isObject, optedIn } from '../inject/pod.ts';
import type { JsonObject } from '../inject/sidecar.ts';

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

export class BadReview extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BadReview';
  }
}

export interface AdmissionResponse {
  readonly uid: string;
  readonly allowed: boolean;
  readonly patchType?: 'JSONPatch';
  /** base64 of the JSON Patch document. */
  readonly patch?: string;
  readonly status?: { readonly status: 'Failure'; readonly code: number; readonly reason: string; readonly message: string };
  readonly warnings?: readonly string[];
}

export interface AdmissionReviewOut {
  readonly apiVersion: typeof ADMISSION_API_VERSION;
  readonly kind: 'AdmissionReview';
  readonly response: AdmissionResponse;
}

/** What happened, for the log line (never the pod spec: env values may be secrets). */
export interface ReviewOutcome {
  readonly uid: string;
  readonly namespace: string;
  readonly pod: string;
  readonly decision: 'ignored' | 'not-opted-in' | 'already-injected' | 'skipped' | 'injected' | 'denied';
  readonly detail?: string;
  readonly ops?: number;
}

export function reviewAdmission(body: unknown, opts: InjectOptions): { review: AdmissionReviewOut; outcome: ReviewOutcome } {
  if (!isObject(body)) throw new BadReview('body is not a JSON object');
  if (body['apiVersion'] !== ADMISSION_API_VERSION || body['kind'] !== 'AdmissionReview') {
    throw new BadReview(`expected apiVersion ${ADMISSION_API_VERSION}, kind AdmissionReview; got ${String(body['apiVersion'])}, ${String(body['kind'])} (set admissionReviewVersions: ["v1"])`);
  }
  const request = body['request'];
  if (!isObject(request)) throw new BadReview('request is missing');
  const uid = request['uid'];
  if (typeof uid !== 'string' || uid === '') throw new BadReview('request.uid is missing');

  const namespace = typeof request['namespace'] === 'string' ? request['namespace'] : '';
  const reply = (response: Omit<AdmissionResponse, 'uid'>, outcome: Omit<ReviewOutcome, 'uid' | 'namespace' | 'pod'>, pod = '') => ({
    review: { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response: { uid, ...response } } as const,
    outcome: { uid, namespace, pod, ...outcome },
  });

  const kind = isObject(request['kind']) ? request['kind'] : {};
  const resource = isObject(request['resource']) ? request['resource'] : {};
  const isPod = kind['kind'] === 'Pod' && (kind['group'] ?? '') === '' && resource['resource'] === 'pods' && !request['subResource'];
  if (!isPod || request['operation'] !== 'CREATE') {
    return reply({ allowed: true }, { decision: 'ignored', detail: `${String(kind['kind'])} ${String(request['operation'])}` });
  }

  const pod = request['object'];
  if (!isObject(pod) || !isObject(pod['spec'])) throw new BadReview('request.object is not a Pod');
  const metadata = isObject(pod['metadata']) ? pod['metadata'] : undefined;
  const podName = typeof metadata?.['name'] === 'string' && metadata['name'] !== '' ? metadata['name'] : `${String(metadata?.['generateName'] ?? '')}*`;

  if (!optedIn(metadata)) return reply({ allowed: true }, { decision: 'not-opted-in' }, podName);
  // Injected already, e.g. by `palisade inject` in the manifest: leave it as its author
  // rendered it. The mark alone is not enough: a mark without the sidecar is injected
  // (the injector's re-injection path), so an opted-in pod cannot skip its sidecar by
  // copying an annotation.
  if (isInjected(metadata) && hasSidecar(pod['spec'])) return reply({ allowed: true }, { decision: 'already-injected' }, podName);

  try {
    const r = injectPod({ metadata, spec: pod['spec'] }, opts, { where: `pod ${namespace}/${podName}`, defaultRestartPolicy: 'Always' });
    if (r.status === 'skipped') return reply({ allowed: true }, { decision: 'skipped', detail: r.reason }, podName);
    const after: JsonObject = { ...pod, metadata: r.metadata, spec: r.spec };
    const ops: PatchOp[] = diff(pod, after);
    return reply(
      { allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(ops)).toString('base64') },
      { decision: 'injected', ops: ops.length },
      podName,
    );
  } catch (err) {
    if (!(err instanceof InjectError)) throw err;
    return reply(
      { allowed: false, status: { status: 'Failure', code: 400, reason: 'BadRequest', message: `palisade sidecar injection failed (${err.code}): ${err.message}` } },
      { decision: 'denied', detail: err.code },
      podName,
    );
  }
}

function hasSidecar(spec: JsonObject): boolean {
  const all = [spec['initContainers'], spec['containers']].flatMap((l) => (Array.isArray(l) ? l : []));
  return all.some((c) => isObject(c) && c['name'] === SIDECAR_NAME);
}
