/** The sidecar container and the volumes it needs, for one pod. */
import { quantityValue, type PodSettings } from './annotations.ts';
import type { InjectOptions } from './options.ts';
import {
  PORT_NAME_ADMIN, PORT_NAME_TLS, POLICY_DIR, POLICY_FILE, POLICY_KEYS_DIR, POLICY_KEYS_FILE, SIDECAR_NAME, SIDECAR_UID, SPOOL_DIR, TLS_DIR,
  VOLUME_POLICY, VOLUME_POLICY_KEYS, VOLUME_SPOOL, VOLUME_TLS, VOLUME_TMP, type InjectMode,
} from './names.ts';

export type JsonObject = { [key: string]: unknown };

export interface Sidecar {
  readonly container: JsonObject;
  readonly volumes: readonly JsonObject[];
}

export function buildSidecar(s: PodSettings, opts: InjectOptions, upstreamPort: number, mode: InjectMode): Sidecar {
  const container: JsonObject = {
    name: SIDECAR_NAME,
    image: opts.image,
    imagePullPolicy: opts.imagePullPolicy,
    args: ['sidecar'],
  };
  // A native sidecar: kubelet starts it before the app containers, waits for its
  // startup probe, keeps it running through the pod's life and stops it last.
  if (mode === 'native') container['restartPolicy'] = 'Always';
  Object.assign(container, {
    ports: [
      { name: PORT_NAME_TLS, containerPort: s.listenPort, protocol: 'TCP' },
      { name: PORT_NAME_ADMIN, containerPort: s.adminPort, protocol: 'TCP' },
    ],
    env: [
      { name: 'PALISADE_POLICY', value: `${POLICY_DIR}/${POLICY_FILE}` },
      { name: 'PALISADE_LISTEN_PORT', value: String(s.listenPort) },
      { name: 'PALISADE_ADMIN_PORT', value: String(s.adminPort) },
      // The app stays on its own port; only the sidecar talks to it, over loopback.
      { name: 'PALISADE_UPSTREAM', value: `http://127.0.0.1:${upstreamPort}` },
      { name: 'PALISADE_TLS_CERT', value: `${TLS_DIR}/tls.crt` },
      { name: 'PALISADE_TLS_KEY', value: `${TLS_DIR}/tls.key` },
      { name: 'PALISADE_TLS_CA', value: `${TLS_DIR}/ca.crt` },
      { name: 'PALISADE_SPOOL_DIR', value: SPOOL_DIR },
      { name: 'PALISADE_SPOOL_MAX_BYTES', value: String(spoolMaxBytes(opts.spoolSize)) },
      { name: 'PALISADE_KAFKA_BROKERS', value: opts.kafkaBrokers },
      { name: 'PALISADE_KAFKA_CREATE_TOPICS', value: opts.kafkaCreateTopics },
      { name: 'PALISADE_LOG_LEVEL', value: s.logLevel },
      // Who this sidecar is in its fleet status record (the workload is the pod name without its suffixes).
      { name: 'PALISADE_POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'PALISADE_POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      ...signatureEnv(opts),
    ],
    resources: {
      requests: { cpu: s.cpuRequest, memory: s.memoryRequest },
      limits: { cpu: s.cpuLimit, memory: s.memoryLimit },
    },
    // /readyz answers 200 once the policy is loaded and the TLS listener is up.
    // As a startup probe it holds the app back until then (native mode), so the
    // app never receives traffic that bypassed a not-yet-ready sidecar.
    startupProbe: probe('/readyz', s.adminPort, { periodSeconds: 1, failureThreshold: 120, timeoutSeconds: 1 }),
    readinessProbe: probe('/readyz', s.adminPort, { periodSeconds: 5, failureThreshold: 2, timeoutSeconds: 1 }),
    livenessProbe: probe('/livez', s.adminPort, { periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 2 }),
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      privileged: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      runAsUser: SIDECAR_UID,
      runAsGroup: SIDECAR_UID,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    volumeMounts: [
      { name: VOLUME_TLS, mountPath: TLS_DIR, readOnly: true },
      // The whole directory, never a subPath: kubelet updates a ConfigMap volume
      // in place (atomic symlink swap), which is what makes policy hot reload
      // work; a subPath mount would freeze the first version.
      { name: VOLUME_POLICY, mountPath: POLICY_DIR, readOnly: true },
      { name: VOLUME_SPOOL, mountPath: SPOOL_DIR },
      { name: VOLUME_TMP, mountPath: '/tmp' },
      // A directory too: a key added or retired in the ConfigMap reaches the sidecar without a restart.
      ...(opts.policyKeysConfigMap ? [{ name: VOLUME_POLICY_KEYS, mountPath: POLICY_KEYS_DIR, readOnly: true }] : []),
    ],
    terminationMessagePolicy: 'FallbackToLogsOnError',
  });
  return {
    container,
    volumes: [
      { name: VOLUME_TLS, ...tlsVolume(s, opts) },
      { name: VOLUME_POLICY, configMap: { name: s.policyConfigMap } },
      { name: VOLUME_SPOOL, emptyDir: { sizeLimit: opts.spoolSize } },
      { name: VOLUME_TMP, emptyDir: { medium: 'Memory', sizeLimit: '16Mi' } },
      ...(opts.policyKeysConfigMap ? [{ name: VOLUME_POLICY_KEYS, configMap: { name: opts.policyKeysConfigMap } }] : []),
    ],
  };
}

/** Signed policies (docs/deploy.md, "Signed policies"): the trusted keys, and whether a signature is required. */
function signatureEnv(opts: InjectOptions): JsonObject[] {
  if (!opts.policyKeysConfigMap) return [];
  return [
    { name: 'PALISADE_POLICY_PUBLIC_KEYS', value: `${POLICY_KEYS_DIR}/${POLICY_KEYS_FILE}` },
    { name: 'PALISADE_POLICY_REQUIRE_SIGNATURE', value: opts.requirePolicySignature },
  ];
}

function probe(path: string, port: number, timing: { periodSeconds: number; failureThreshold: number; timeoutSeconds: number }): JsonObject {
  return { httpGet: { path, port, scheme: 'HTTP' }, ...timing };
}

function tlsVolume(s: PodSettings, opts: InjectOptions): JsonObject {
  switch (s.certSource) {
    case 'cert-manager':
      // cert-manager's CSI driver issues a key and certificate per pod, on the
      // node, renewed in place; the key never exists in a Secret. The URI SAN is
      // the SPIFFE ID that peers' policies name.
      return {
        csi: {
          driver: 'csi.cert-manager.io',
          readOnly: true,
          volumeAttributes: {
            'csi.cert-manager.io/issuer-name': opts.issuerName,
            'csi.cert-manager.io/issuer-kind': opts.issuerKind,
            'csi.cert-manager.io/dns-names': '${SERVICE_ACCOUNT_NAME}.${POD_NAMESPACE}.svc',
            'csi.cert-manager.io/uri-sans': `spiffe://${opts.trustDomain}/ns/\${POD_NAMESPACE}/sa/\${SERVICE_ACCOUNT_NAME}`,
            // Serving mTLS, and usable as the client certificate of calls the pod makes.
            'csi.cert-manager.io/key-usages': 'digital signature,server auth,client auth',
            // The sidecar is not root: let its group read the key.
            'csi.cert-manager.io/fs-group': String(SIDECAR_UID),
          },
        },
      };
    case 'spiffe':
      // csi-driver-spiffe derives the SPIFFE ID from the pod's ServiceAccount.
      return {
        csi: {
          driver: 'spiffe.csi.cert-manager.io',
          readOnly: true,
          volumeAttributes: { 'spiffe.csi.cert-manager.io/fs-group': String(SIDECAR_UID) },
        },
      };
    case 'secret':
      return { secret: { secretName: s.tlsSecret } };
  }
}

/**
 * The spool must stay below its emptyDir's sizeLimit: past the limit kubelet
 * evicts the whole pod. 80% leaves room for the segment being written.
 */
export function spoolMaxBytes(sizeLimit: string): number {
  return Math.floor(quantityValue(sizeLimit) * 0.8);
}
