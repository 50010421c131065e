/**
 * The status record every sidecar publishes on the compacted sidecars topic
 * (palisade.sidecars.v1), keyed by pod: what a platform team needs to see which
 * policy each workload runs (drift), whether it was verified, which policy a
 * sidecar refused and why, and how far it has applied the block list.
 *
 * Small and flat on purpose: one record per pod every few seconds.
 */
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';

export const STATUS_SCHEMA = 1;
/** Block-list advances kept in a status record (block acknowledgement, slowest time to apply). */
export const BLOCKLIST_HISTORY = 16;

export interface SidecarStatus {
  readonly schema: typeof STATUS_SCHEMA;
  readonly workload: string;
  readonly namespace: string;
  readonly pod: string;
  /** Palisade release of the sidecar. */
  readonly version: string;
  readonly policy: {
    readonly name: string;
    readonly version: string;
    /** sha256 of the policy's canonical JSON (as in decision events). */
    readonly hash: string;
    readonly verified: boolean;
    readonly keyId: string | null;
  } | null;
  /** The last policy refused since the one in force was applied: its stable code and why. */
  readonly refused: { readonly code: string; readonly reason: string; readonly at: string } | null;
  /** The block-list topic this sidecar follows (acknowledgements count only sidecars of the same topic). */
  readonly blocklistTopic: string;
  /** Block-list topic position applied (every record below it is enforced), decimal; null before the first. */
  readonly blocklistPosition: string | null;
  /**
   * The last positions reached and when (ISO 8601), oldest first, at most BLOCKLIST_HISTORY:
   * a block at offset o was applied at the first entry whose position is above o.
   */
  readonly blocklistApplied: readonly { readonly position: string; readonly at: string }[];
  /** ISO 8601. */
  readonly startedAt: string;
  /** ISO 8601: when this record was published. */
  readonly lastSeen: string;
  /** How often the sidecar publishes, ms: a reader tells stale records by it. */
  readonly intervalMs: number;
}

export interface PodIdentity {
  readonly workload: string;
  readonly namespace: string;
  readonly pod: string;
}

const SA_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/**
 * The workload of a pod name: a Deployment's pod is <deployment>-<replicaset hash>-<5 chars>,
 * a StatefulSet's or DaemonSet's <name>-<ordinal or 5 chars>. A bare host name is its own workload.
 */
export function workloadOfPod(pod: string): string {
  const deployment = /^(.+)-[a-z0-9]{6,10}-[a-z0-9]{5}$/.exec(pod);
  if (deployment) return deployment[1]!;
  const other = /^(.+)-(?:[0-9]+|[a-z0-9]{5})$/.exec(pod);
  return other ? other[1]! : pod;
}

/** Who this sidecar is: settings first, then what Kubernetes gives every pod. */
export function podIdentity(s: { readonly workload: string; readonly podName: string; readonly podNamespace: string }): PodIdentity {
  const pod = s.podName || hostname();
  let namespace = s.podNamespace;
  if (!namespace) {
    try {
      namespace = readFileSync(SA_NAMESPACE, 'utf8').trim();
    } catch {
      namespace = 'default';
    }
  }
  return { pod, namespace, workload: s.workload || workloadOfPod(pod) };
}

/** The record's Kafka key: one per pod and namespace. */
export function statusKey(id: Pick<PodIdentity, 'namespace' | 'pod'>): string {
  return `${id.namespace}/${id.pod}`;
}

/** A record read back; null when it is not a status record of this schema (skipped, never fatal). */
export function decodeStatus(value: Buffer | null): SidecarStatus | null {
  if (value === null) return null;
  try {
    const v = JSON.parse(value.toString('utf8')) as Partial<SidecarStatus>;
    if (v.schema !== STATUS_SCHEMA || typeof v.pod !== 'string' || typeof v.workload !== 'string' || typeof v.namespace !== 'string' || typeof v.lastSeen !== 'string') return null;
    return v as SidecarStatus;
  } catch {
    return null;
  }
}
