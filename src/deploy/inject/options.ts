/**
 * What the injector adds to a pod, as one table shared by `palisade inject` (flags)
 * and `palisade webhook` (PALISADE_INJECT_* environment variables): both must
 * produce the same sidecar from the same inputs.
 */
import { createAjv, describeAjvErrors } from '../../util/ajv.ts';
import { quantityValue } from './annotations.ts';
import { InjectError } from './errors.ts';
import { CERT_SOURCES, INJECT_MODES, QUANTITY_PATTERN, DNS1123_SUBDOMAIN_PATTERN, type CertSource, type InjectMode } from './names.ts';
import { schemaOfSpecs } from '../../config/spec-schema.ts';

interface OptionSpec {
  /** Environment variable read by `palisade webhook`. */
  readonly env: string;
  /** Long flag of `palisade inject` (without the dashes). */
  readonly flag: string;
  readonly type: 'string' | 'integer';
  readonly default: string | number;
  readonly description: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly enum?: readonly string[];
  readonly pattern?: string;
}

const PORT = { type: 'integer', minimum: 1, maximum: 65535 } as const;

/** Default sidecar image; a release pins it by digest (see docs/deploy.md). */
export const DEFAULT_IMAGE = 'ghcr.io/palisade-dev/palisade:0.1.0';

export const INJECT_OPTIONS = {
  image: { env: 'PALISADE_INJECT_IMAGE', flag: 'image', type: 'string', default: DEFAULT_IMAGE, description: 'Sidecar image. Use a digest reference (repo@sha256:...) in production.' },
  imagePullPolicy: { env: 'PALISADE_INJECT_IMAGE_PULL_POLICY', flag: 'image-pull-policy', type: 'string', default: 'IfNotPresent', enum: ['Always', 'IfNotPresent', 'Never'], description: 'imagePullPolicy of the sidecar container.' },
  mode: { env: 'PALISADE_INJECT_MODE', flag: 'mode', type: 'string', default: 'native', enum: INJECT_MODES, description: 'native = init container with restartPolicy Always (Kubernetes 1.29+): up before the app, down after it. container = plain container, for older clusters.' },
  certSource: { env: 'PALISADE_INJECT_CERT_SOURCE', flag: 'cert-source', type: 'string', default: 'cert-manager', enum: CERT_SOURCES, description: 'Where the sidecar certificate comes from: cert-manager (csi.cert-manager.io CSI volume, per-pod key), spiffe (cert-manager csi-driver-spiffe, spiffe.csi.cert-manager.io), or secret (an existing kubernetes.io/tls Secret with ca.crt).' },
  issuerName: { env: 'PALISADE_INJECT_ISSUER_NAME', flag: 'issuer-name', type: 'string', default: 'palisade-ca', pattern: DNS1123_SUBDOMAIN_PATTERN, description: 'cert-manager issuer that signs sidecar certificates (cert-source cert-manager).' },
  issuerKind: { env: 'PALISADE_INJECT_ISSUER_KIND', flag: 'issuer-kind', type: 'string', default: 'ClusterIssuer', enum: ['Issuer', 'ClusterIssuer'], description: 'Kind of that issuer.' },
  trustDomain: { env: 'PALISADE_INJECT_TRUST_DOMAIN', flag: 'trust-domain', type: 'string', default: 'cluster.local', pattern: '^[a-z0-9._-]+$', description: 'SPIFFE trust domain of the URI SAN spiffe://DOMAIN/ns/NAMESPACE/sa/SERVICEACCOUNT (cert-source cert-manager).' },
  tlsSecret: { env: 'PALISADE_INJECT_TLS_SECRET', flag: 'tls-secret', type: 'string', default: 'palisade-tls', pattern: DNS1123_SUBDOMAIN_PATTERN, description: 'Secret with tls.crt, tls.key and ca.crt (cert-source secret).' },
  policyConfigMap: { env: 'PALISADE_INJECT_POLICY_CONFIGMAP', flag: 'policy-configmap', type: 'string', default: 'palisade-policy', pattern: DNS1123_SUBDOMAIN_PATTERN, description: 'ConfigMap (in the pod\'s namespace) holding policy.yaml; mounted as a directory so edits reach the sidecar without a restart.' },
  policyKeysConfigMap: { env: 'PALISADE_INJECT_POLICY_KEYS_CONFIGMAP', flag: 'policy-keys-configmap', type: 'string', default: '', pattern: `^$|${DNS1123_SUBDOMAIN_PATTERN}`, description: 'ConfigMap (in the pod\'s namespace) whose policy.pub holds the PEM public keys trusted to sign the policy (several keys in the file while a key rotates); mounted as a directory and set as the sidecar\'s PALISADE_POLICY_PUBLIC_KEYS. Empty = policy signatures are not checked.' },
  requirePolicySignature: { env: 'PALISADE_INJECT_REQUIRE_POLICY_SIGNATURE', flag: 'require-policy-signature', type: 'string', default: 'false', enum: ['true', 'false'], description: 'PALISADE_POLICY_REQUIRE_SIGNATURE of the sidecar: true = a policy without a valid signature (policy.yaml.sig in the policy ConfigMap) by a key of the keys ConfigMap is refused, and a pod without one does not start. Needs --policy-keys-configmap.' },
  listenPort: { env: 'PALISADE_INJECT_LISTEN_PORT', flag: 'listen-port', ...PORT, default: 8443, description: 'Sidecar mTLS port; Services are pointed at it.' },
  adminPort: { env: 'PALISADE_INJECT_ADMIN_PORT', flag: 'admin-port', ...PORT, default: 9901, description: 'Sidecar admin port (/livez, /readyz, /metrics); probes use it.' },
  kafkaBrokers: { env: 'PALISADE_INJECT_KAFKA_BROKERS', flag: 'kafka-brokers', type: 'string', default: '', pattern: '^[A-Za-z0-9.,:_-]*$', description: 'Comma-separated host:port list for decision events; empty = NDJSON on the sidecar\'s stdout.' },
  kafkaCreateTopics: { env: 'PALISADE_INJECT_KAFKA_CREATE_TOPICS', flag: 'kafka-create-topics', type: 'string', default: 'false', enum: ['true', 'false'], description: 'PALISADE_KAFKA_CREATE_TOPICS of the sidecar. false: the topics are provisioned with the platform (deploy/k8s/topics), and sidecars need no CREATE right on the cluster.' },
  logLevel: { env: 'PALISADE_INJECT_LOG_LEVEL', flag: 'log-level', type: 'string', default: 'info', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], description: 'PALISADE_LOG_LEVEL of the sidecar.' },
  // Resources, from what the sidecar measured (docs/deploy.md, "Memory settings"): idle RSS 90-110
  // MiB with a small policy and 103-122 MiB with 100,000 block entries (bench/idle-rss.ts; NDJSON
  // on the request thread the least, the Kafka sink in its thread the most), and 131-154 (NDJSON)
  // and 147-156 MiB (Kafka) at most at saturation inside a 256 MiB cgroup with that policy reloaded midway
  // (test/deploy/memory-limit.test.ts: not killed), so the memory request covers a pod's steady
  // state with a large block list with some room, and 256Mi is the limit. CPU: ~0.3 to 0.4 ms of CPU per
  // request at 2,000 req/s, so the 100m request is ~300 requests a second of steady traffic
  // (raise it per workload with palisade.dev/cpu-request), and the limit of one core is what the
  // benchmark pins the sidecar to.
  cpuRequest: { env: 'PALISADE_INJECT_CPU_REQUEST', flag: 'cpu-request', type: 'string', default: '100m', pattern: QUANTITY_PATTERN, description: 'Sidecar CPU request (Kubernetes quantity, cores).' },
  cpuLimit: { env: 'PALISADE_INJECT_CPU_LIMIT', flag: 'cpu-limit', type: 'string', default: '1', pattern: QUANTITY_PATTERN, description: 'Sidecar CPU limit (Kubernetes quantity, cores).' },
  memoryRequest: { env: 'PALISADE_INJECT_MEMORY_REQUEST', flag: 'memory-request', type: 'string', default: '160Mi', pattern: QUANTITY_PATTERN, description: 'Sidecar memory request (Kubernetes quantity, bytes).' },
  memoryLimit: { env: 'PALISADE_INJECT_MEMORY_LIMIT', flag: 'memory-limit', type: 'string', default: '256Mi', pattern: QUANTITY_PATTERN, description: 'Sidecar memory limit (Kubernetes quantity, bytes).' },
  spoolSize: { env: 'PALISADE_INJECT_SPOOL_SIZE', flag: 'spool-size', type: 'string', default: '256Mi', pattern: QUANTITY_PATTERN, description: 'sizeLimit of the spool emptyDir that buffers decision events while Kafka is unreachable (bytes); the sidecar\'s PALISADE_SPOOL_MAX_BYTES is set to 80% of it.' },
} as const satisfies Record<string, OptionSpec>;

export type InjectOptionName = keyof typeof INJECT_OPTIONS;

export interface InjectOptions {
  readonly image: string;
  readonly imagePullPolicy: 'Always' | 'IfNotPresent' | 'Never';
  readonly mode: InjectMode;
  readonly certSource: CertSource;
  readonly issuerName: string;
  readonly issuerKind: 'Issuer' | 'ClusterIssuer';
  readonly trustDomain: string;
  readonly tlsSecret: string;
  readonly policyConfigMap: string;
  readonly policyKeysConfigMap: string;
  readonly requirePolicySignature: 'true' | 'false';
  readonly listenPort: number;
  readonly adminPort: number;
  readonly kafkaBrokers: string;
  readonly kafkaCreateTopics: 'true' | 'false';
  readonly logLevel: string;
  readonly cpuRequest: string;
  readonly cpuLimit: string;
  readonly memoryRequest: string;
  readonly memoryLimit: string;
  readonly spoolSize: string;
}

const schema = schemaOfSpecs(INJECT_OPTIONS);
const validate = createAjv({ coerceTypes: true }).compile(schema);

/**
 * Validates option values (strings from flags or the environment are coerced)
 * and fills defaults. `source` names where a bad value came from, per option.
 */
export function resolveInjectOptions(values: Partial<Record<InjectOptionName, unknown>>, source: (name: InjectOptionName) => string = (n) => `--${INJECT_OPTIONS[n].flag}`): InjectOptions {
  const data: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) if (v !== undefined && v !== '') data[k] = v;
  if (!validate(data)) {
    const lines = describeAjvErrors(validate.errors, 'options', data).map((line) => {
      const key = /^options\/(\w+)/.exec(line)?.[1] as InjectOptionName | undefined;
      return key && key in INJECT_OPTIONS ? `${source(key)}${line.slice(line.indexOf(':'))}` : line;
    });
    throw new InjectError('INJECT_OPTIONS_INVALID', `invalid inject options:\n  - ${lines.join('\n  - ')}`);
  }
  const opts = data as unknown as InjectOptions;
  if (opts.listenPort === opts.adminPort) {
    throw new InjectError('INJECT_OPTIONS_INVALID', `invalid inject options: ${source('listenPort')} and ${source('adminPort')} are both ${opts.listenPort}`);
  }
  if (opts.requirePolicySignature === 'true' && opts.policyKeysConfigMap === '') {
    throw new InjectError('INJECT_OPTIONS_INVALID', `invalid inject options: ${source('requirePolicySignature')} is true but ${source('policyKeysConfigMap')} is empty: name the ConfigMap of the trusted public keys (every sidecar would refuse to start)`);
  }
  // The sidecar refuses a spool under 64 KiB; a spool that small is a mistake anyway.
  if (quantityValue(opts.spoolSize) < 2 ** 20) {
    throw new InjectError('INJECT_OPTIONS_INVALID', `invalid inject options: ${source('spoolSize')} ${opts.spoolSize} is below 1Mi`);
  }
  return Object.freeze(opts);
}

/** Options from PALISADE_INJECT_* variables (the webhook's configuration). */
export function injectOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): InjectOptions {
  const values: Partial<Record<InjectOptionName, unknown>> = {};
  for (const [k, s] of Object.entries(INJECT_OPTIONS)) values[k as InjectOptionName] = env[s.env];
  return resolveInjectOptions(values, (n) => INJECT_OPTIONS[n].env);
}

/** Markdown table of the options, for docs/deploy.md. */
export function injectOptionsTable(): string {
  const rows = Object.values(INJECT_OPTIONS).map((s) => `| \`--${s.flag}\` | \`${s.env}\` | \`${String(s.default) || '""'}\` | ${s.description} |`);
  return ['| Flag (`palisade inject`) | Variable (`palisade webhook`) | Default | Meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
