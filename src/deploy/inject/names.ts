/** Names the injector writes into pods; changing one breaks idempotence for pods injected before. */

export const INJECT_MODES = ['native', 'container'] as const;
export type InjectMode = (typeof INJECT_MODES)[number];

export const CERT_SOURCES = ['cert-manager', 'spiffe', 'secret'] as const;
export type CertSource = (typeof CERT_SOURCES)[number];

export const SIDECAR_NAME = 'palisade';

export const VOLUME_TLS = 'palisade-tls';
export const VOLUME_POLICY = 'palisade-policy';
export const VOLUME_SPOOL = 'palisade-spool';
export const VOLUME_TMP = 'palisade-tmp';
export const VOLUME_POLICY_KEYS = 'palisade-policy-keys';
export const SIDECAR_VOLUMES = [VOLUME_TLS, VOLUME_POLICY, VOLUME_SPOOL, VOLUME_TMP, VOLUME_POLICY_KEYS] as const;

/** Mount paths match the sidecar's default settings (src/config/settings.ts). */
export const TLS_DIR = '/var/run/secrets/palisade';
export const POLICY_DIR = '/etc/palisade/policy';
export const POLICY_FILE = 'policy.yaml';
/** The trusted policy-signing public keys (a ConfigMap; one PEM file may hold several keys). */
export const POLICY_KEYS_DIR = '/etc/palisade/policy-keys';
export const POLICY_KEYS_FILE = 'policy.pub';
export const SPOOL_DIR = '/var/lib/palisade/spool';

export const PORT_NAME_TLS = 'palisade-tls';
export const PORT_NAME_ADMIN = 'palisade-admin';

/** The non-root uid/gid of the Chainguard image's `node` user. */
export const SIDECAR_UID = 65532;

const PREFIX = 'palisade.dev/';
/** Pod annotations and labels the injector reads (overrides) or writes (status). */
export const ANNOTATIONS = {
  inject: `${PREFIX}inject`,
  policy: `${PREFIX}policy`,
  listenPort: `${PREFIX}listen-port`,
  adminPort: `${PREFIX}admin-port`,
  upstreamPort: `${PREFIX}upstream-port`,
  cpuRequest: `${PREFIX}cpu-request`,
  cpuLimit: `${PREFIX}cpu-limit`,
  memoryRequest: `${PREFIX}memory-request`,
  memoryLimit: `${PREFIX}memory-limit`,
  tlsSecret: `${PREFIX}tls-secret`,
  logLevel: `${PREFIX}log-level`,
  /** Written by the injector: marks a pod as injected (value: the mode). */
  status: `${PREFIX}injected`,
  /** Written on Services: the target ports before they were pointed at the sidecar. */
  originalTargetPorts: `${PREFIX}original-target-ports`,
} as const;

export const DEFAULT_CONTAINER_ANNOTATION = 'kubectl.kubernetes.io/default-container';

export const DNS1123_SUBDOMAIN_PATTERN = '^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
export const QUANTITY_PATTERN = '^[0-9]+(\\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$';
