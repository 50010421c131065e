/**
 * Process settings of the sidecar: where things are, not what is allowed
 * (that is the policy). Read from PALISADE_* environment variables (flags of
 * `palisade sidecar` override them), validated by ajv with defaults, frozen.
 * The README's settings table is generated from this schema
 * (`palisade settings --markdown`) and a test checks it is current.
 */
import { PalisadeError } from '../errors/codes.ts';
import { createAjv, describeAjvErrors } from '../util/ajv.ts';
import { deepFreeze } from '../util/freeze.ts';
import { envSpecsTable, readEnvSpecs, schemaOfSpecs } from './spec-schema.ts';

interface SettingSpec {
  readonly env: string;
  readonly type: 'string' | 'integer' | 'number' | 'boolean';
  readonly default: string | number | boolean;
  readonly description: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly enum?: readonly string[];
  readonly pattern?: string;
}

/** Every sidecar setting: name -> env var, type, default, and what it means (with its unit). */
export const SETTINGS = {
  policyFile: { env: 'PALISADE_POLICY', type: 'string', default: '/etc/palisade/policy/policy.yaml', description: 'Policy file (YAML or JSON). Watched; a valid change applies without restart, an invalid one is refused.' },
  policyPublicKeys: { env: 'PALISADE_POLICY_PUBLIC_KEYS', type: 'string', default: '', description: 'Comma-separated PEM files of the public keys trusted to sign the policy (ECDSA P-256, cosign key-pair format; a file may hold several keys, so keys rotate with overlap). Watched. When set, a signature beside the policy (policy file + ".sig") must verify against one of them or the policy is refused. Empty = signatures are not checked.' },
  policyRequireSignature: { env: 'PALISADE_POLICY_REQUIRE_SIGNATURE', type: 'boolean', default: false, description: 'Refuse a policy without a valid signature by a key of PALISADE_POLICY_PUBLIC_KEYS (unsigned, malformed, changed after signing, untrusted key); the previous policy stays in force, and at start the sidecar does not start. true in the Kubernetes overlays.' },
  listenHost: { env: 'PALISADE_LISTEN_HOST', type: 'string', default: '0.0.0.0', description: 'Address of the mTLS listener.' },
  listenPort: { env: 'PALISADE_LISTEN_PORT', type: 'integer', default: 8443, minimum: 0, maximum: 65535, description: 'Port of the mTLS listener (0 = any free port).' },
  plaintextPort: { env: 'PALISADE_PLAINTEXT_PORT', type: 'integer', default: 8080, minimum: 0, maximum: 65535, description: 'Port of the plain-HTTP listener, opened only when the policy sets spec.listener.allowPlaintext.' },
  adminHost: { env: 'PALISADE_ADMIN_HOST', type: 'string', default: '0.0.0.0', description: 'Address of the admin listener (/livez, /readyz, /metrics).' },
  adminPort: { env: 'PALISADE_ADMIN_PORT', type: 'integer', default: 9901, minimum: 0, maximum: 65535, description: 'Port of the admin listener.' },
  upstream: { env: 'PALISADE_UPSTREAM', type: 'string', default: 'http://127.0.0.1:8081', description: 'The protected service (http://host:port on localhost).' },
  upstreamConnectTimeoutMs: { env: 'PALISADE_UPSTREAM_CONNECT_TIMEOUT_MS', type: 'integer', default: 1000, minimum: 1, description: 'Upstream connect timeout, milliseconds; exceeded -> 504 UPSTREAM_TIMEOUT.' },
  upstreamTimeoutMs: { env: 'PALISADE_UPSTREAM_TIMEOUT_MS', type: 'integer', default: 15000, minimum: 1, description: 'Upstream response (headers) timeout, milliseconds; exceeded -> 504 UPSTREAM_TIMEOUT.' },
  upstreamConnections: { env: 'PALISADE_UPSTREAM_CONNECTIONS', type: 'integer', default: 128, minimum: 1, description: 'Keep-alive connections to the upstream, at most.' },
  tlsCert: { env: 'PALISADE_TLS_CERT', type: 'string', default: '/var/run/secrets/palisade/tls.crt', description: 'Server certificate chain (PEM). Watched and reloaded on change.' },
  tlsKey: { env: 'PALISADE_TLS_KEY', type: 'string', default: '/var/run/secrets/palisade/tls.key', description: 'Server private key (PEM). Watched and reloaded on change.' },
  tlsCa: { env: 'PALISADE_TLS_CA', type: 'string', default: '/var/run/secrets/palisade/ca.crt', description: 'Trust bundle (PEM) that client certificates must chain to. Watched and reloaded on change.' },
  tlsMinVersion: { env: 'PALISADE_TLS_MIN_VERSION', type: 'string', default: 'TLSv1.2', enum: ['TLSv1.2', 'TLSv1.3'], description: 'Lowest TLS version accepted.' },
  requireClientCert: { env: 'PALISADE_REQUIRE_CLIENT_CERT', type: 'boolean', default: true, description: 'Refuse TLS handshakes without a client certificate that chains to the trust bundle.' },
  decisionsFile: { env: 'PALISADE_DECISIONS_FILE', type: 'string', default: 'stdout', description: 'NDJSON decision sink target when Kafka is not configured: "stdout" or a file path.' },
  eventDetail: { env: 'PALISADE_EVENT_DETAIL', type: 'string', default: 'standard', enum: ['standard', 'full'], description: 'How much each decision event carries (NDJSON and Kafka): "standard" = the OCSF required attributes, the recommended ones that carry information, and what the detector and `policy diff` read (about a third of the bytes: 1,152 for the benchmark\'s request); "full" = every fact of the decision record (caption names, observables, certificate details, per-stage timings, all token claims). See docs/events.md, "Detail levels".' },
  decisionsThread: { env: 'PALISADE_DECISIONS_THREAD', type: 'string', default: 'auto', enum: ['auto', 'worker', 'main'], description: 'Where decision events are encoded and written: "worker" = a thread of their own (the request thread only hands each record over), "main" = on the request thread, "auto" = the thread for the Kafka sink and the request thread for NDJSON (a file or stdout), as measured cheapest for each. See docs/benchmark.md for what each costs.' },
  logLevel: { env: 'PALISADE_LOG_LEVEL', type: 'string', default: 'info', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], description: 'pino log level.' },
  accessLog: { env: 'PALISADE_ACCESS_LOG', type: 'boolean', default: false, description: 'Also log one line per request (the decision stream already records every request).' },
  trustedProxies: { env: 'PALISADE_TRUSTED_PROXIES', type: 'string', default: '', description: 'Comma-separated IPs/CIDRs whose X-Forwarded-For is believed; others\' is ignored for the client IP.' },
  blocklistReadyTimeoutMs: { env: 'PALISADE_BLOCKLIST_READY_TIMEOUT_MS', type: 'integer', default: 30000, minimum: 0, description: 'With Kafka: /readyz stays 503 until the block list is rebuilt from its topic, at most this long after start, milliseconds.' },
  shutdownGraceMs: { env: 'PALISADE_SHUTDOWN_GRACE_MS', type: 'integer', default: 10000, minimum: 0, description: 'On SIGTERM: time to finish in-flight requests and flush decisions, milliseconds; past it the process exits 1. After a complete drain it exits 0 (within 2 s even if a library still holds it open, which is logged with what).' },
  headersTimeoutMs: { env: 'PALISADE_HEADERS_TIMEOUT_MS', type: 'integer', default: 10000, minimum: 100, description: 'Time a client has to send complete request headers, milliseconds (slowloris protection).' },
  requestTimeoutMs: { env: 'PALISADE_REQUEST_TIMEOUT_MS', type: 'integer', default: 30000, minimum: 100, description: 'Time a client has to send the whole request including the body, milliseconds.' },
  keepAliveTimeoutMs: { env: 'PALISADE_KEEPALIVE_TIMEOUT_MS', type: 'integer', default: 65000, minimum: 0, description: 'Idle keep-alive connection timeout, milliseconds.' },
  // ---- Kafka decision stream (docs/kafka.md) ----
  kafkaBrokers: { env: 'PALISADE_KAFKA_BROKERS', type: 'string', default: '', description: 'Comma-separated Kafka bootstrap brokers (host:port). Empty = no Kafka: decisions go to the NDJSON sink.' },
  kafkaClientId: { env: 'PALISADE_KAFKA_CLIENT_ID', type: 'string', default: 'palisade-sidecar', description: 'Kafka client id (broker logs, quotas, ACLs).' },
  kafkaTopicDecisions: { env: 'PALISADE_KAFKA_TOPIC_DECISIONS', type: 'string', default: 'palisade.decisions.v1', description: 'Topic of the decision events (OCSF HTTP Activity, one per request).' },
  kafkaTopicBlocklist: { env: 'PALISADE_KAFKA_TOPIC_BLOCKLIST', type: 'string', default: 'palisade.blocklist.v1', description: 'Compacted topic of block-list records (written by the detector, read by sidecars).' },
  kafkaTopicQuotas: { env: 'PALISADE_KAFKA_TOPIC_QUOTAS', type: 'string', default: 'palisade.quotas.v1', description: 'Compacted topic of fleet-wide quota entries (over or near quota until the window ends; written by the detector, read by sidecars).' },
  kafkaTopicAlerts: { env: 'PALISADE_KAFKA_TOPIC_ALERTS', type: 'string', default: 'palisade.alerts.v1', description: 'Topic of detector alerts.' },
  kafkaAuthentications: { env: 'PALISADE_KAFKA_AUTHENTICATIONS', type: 'boolean', default: false, description: 'Also publish an OCSF Authentication event (class 3002, Logon; success or failure) for every request whose authentication ran, to PALISADE_KAFKA_TOPIC_AUTHENTICATIONS, for SIEM logon rules. false: none, and no extra work per request.' },
  kafkaTopicSidecars: { env: 'PALISADE_KAFKA_TOPIC_SIDECARS', type: 'string', default: 'palisade.sidecars.v1', description: 'Compacted topic of the sidecars\' status records, keyed by pod (read by palisade fleet status).' },
  fleetStatusIntervalMs: { env: 'PALISADE_FLEET_STATUS_INTERVAL_MS', type: 'integer', default: 5000, minimum: 0, description: 'With Kafka: how often the sidecar publishes its status record (policy, signature, block-list offset) on PALISADE_KAFKA_TOPIC_SIDECARS, milliseconds; also at each change, and a tombstone at clean shutdown. 0 = never.' },
  workload: { env: 'PALISADE_WORKLOAD', type: 'string', default: '', description: 'Workload name in the status record; empty = the pod name without its ReplicaSet and pod suffixes.' },
  podName: { env: 'PALISADE_POD_NAME', type: 'string', default: '', description: 'Pod name in the status record (its key); empty = the host name (a pod\'s name in Kubernetes).' },
  podNamespace: { env: 'PALISADE_POD_NAMESPACE', type: 'string', default: '', description: 'Namespace in the status record; empty = read from the service account mount, else "default".' },
  kafkaTopicAuthentications: { env: 'PALISADE_KAFKA_TOPIC_AUTHENTICATIONS', type: 'string', default: 'palisade.authentications.v1', description: 'Topic of the OCSF Authentication events (when PALISADE_KAFKA_AUTHENTICATIONS is true).' },
  kafkaCreateTopics: { env: 'PALISADE_KAFKA_CREATE_TOPICS', type: 'boolean', default: true, description: 'Create missing topics with their settings at start (needs CREATE on the cluster); false when topics are managed elsewhere.' },
  kafkaTopicPartitions: { env: 'PALISADE_KAFKA_TOPIC_PARTITIONS', type: 'integer', default: 6, minimum: 1, description: 'Partitions of a decisions/alerts topic created by Palisade, count (existing topics are not changed).' },
  kafkaTopicReplication: { env: 'PALISADE_KAFKA_TOPIC_REPLICATION', type: 'integer', default: 3, minimum: 1, description: 'Replication factor of topics created by Palisade, replicas; capped at the number of brokers.' },
  kafkaDecisionsRetentionMs: { env: 'PALISADE_KAFKA_DECISIONS_RETENTION_MS', type: 'integer', default: 604800000, minimum: 60000, description: 'retention.ms of a decisions topic created by Palisade, milliseconds (default 7 days).' },
  kafkaTls: { env: 'PALISADE_KAFKA_TLS', type: 'boolean', default: false, description: 'Connect to the brokers with TLS.' },
  kafkaTlsCa: { env: 'PALISADE_KAFKA_TLS_CA', type: 'string', default: '', description: 'PEM trust bundle for the brokers\' certificates; empty = the system CAs.' },
  kafkaTlsCert: { env: 'PALISADE_KAFKA_TLS_CERT', type: 'string', default: '', description: 'PEM client certificate chain for mutual TLS to the brokers; empty = none.' },
  kafkaTlsKey: { env: 'PALISADE_KAFKA_TLS_KEY', type: 'string', default: '', description: 'PEM private key of PALISADE_KAFKA_TLS_CERT.' },
  kafkaSaslMechanism: { env: 'PALISADE_KAFKA_SASL_MECHANISM', type: 'string', default: '', enum: ['', 'scram-sha-256', 'scram-sha-512', 'oauthbearer'], description: 'SASL mechanism; empty = no SASL.' },
  kafkaSaslUsername: { env: 'PALISADE_KAFKA_SASL_USERNAME', type: 'string', default: '', description: 'SASL SCRAM user name.' },
  kafkaSaslPasswordFile: { env: 'PALISADE_KAFKA_SASL_PASSWORD_FILE', type: 'string', default: '', description: 'File holding the SASL SCRAM password (re-read on each authentication; never logged).' },
  kafkaOauthTokenFile: { env: 'PALISADE_KAFKA_SASL_OAUTH_TOKEN_FILE', type: 'string', default: '', description: 'File holding the OAUTHBEARER token (re-read on each authentication, so a rotated token applies to the next connection; never logged).' },
  kafkaConnectTimeoutMs: { env: 'PALISADE_KAFKA_CONNECT_TIMEOUT_MS', type: 'integer', default: 3000, minimum: 100, description: 'Broker TCP/TLS connect timeout, milliseconds.' },
  kafkaRequestTimeoutMs: { env: 'PALISADE_KAFKA_REQUEST_TIMEOUT_MS', type: 'integer', default: 10000, minimum: 100, description: 'Broker request timeout, milliseconds; a slower broker counts as down and events spool.' },
  kafkaBatchSize: { env: 'PALISADE_KAFKA_BATCH_SIZE', type: 'integer', default: 500, minimum: 1, description: 'Events per produce request, at most.' },
  kafkaLingerMs: { env: 'PALISADE_KAFKA_LINGER_MS', type: 'integer', default: 250, minimum: 0, description: 'Longest an event waits in memory for its batch to fill, milliseconds (default 250: fewer, larger produce requests cost less CPU and bytes per event than 50, measured in docs/kafka.md; a crash without SIGTERM loses at most this much of unpublished events, beyond what is spooled).' },
  kafkaBufferEvents: { env: 'PALISADE_KAFKA_BUFFER_EVENTS', type: 'integer', default: 20000, minimum: 1, description: 'Events held in memory, at most; at half of it (broker slow) or during an outage they spill to the spool.' },
  kafkaCompression: { env: 'PALISADE_KAFKA_COMPRESSION', type: 'string', default: 'gzip', enum: ['none', 'gzip', 'zstd'], description: 'Compression of produce batches: "gzip" (level 1), "zstd" (level 3; Kafka 2.1+ brokers and consumers, kafkajs consumers need a zstd codec) or "none"; all built into Node. See docs/kafka.md for CPU and bytes per event of each.' },
  spoolDir: { env: 'PALISADE_SPOOL_DIR', type: 'string', default: '', description: 'Directory of the disk spool for decision events while Kafka is unreachable or slow; empty = no spool (memory only, overflow dropped and counted).' },
  spoolMaxBytes: { env: 'PALISADE_SPOOL_MAX_BYTES', type: 'integer', default: 209715200, minimum: 65536, description: 'Size limit of the spool, bytes (default 200 MiB); events beyond it are dropped and counted. Keep it below the volume\'s size.' },
  spoolFsync: { env: 'PALISADE_SPOOL_FSYNC', type: 'string', default: 'always', pattern: '^(always|roll|[1-9][0-9]*)$', description: 'When spooled events are fsynced: "always" (after each spilled batch), "roll" (only when a segment is closed and at shutdown) or a number N (at most every N milliseconds, plus roll and shutdown).' },
  // ---- tracing (docs/observability.md) ----
  otlpEndpoint: { env: 'PALISADE_OTLP_ENDPOINT', type: 'string', default: '', description: 'OTLP/HTTP collector base URL for traces (e.g. http://otel-collector:4318; /v1/traces is appended). Empty = OTEL_EXPORTER_OTLP_ENDPOINT if set, else tracing off (no cost on the request path).' },
  traceSampleRatio: { env: 'PALISADE_TRACE_SAMPLE_RATIO', type: 'number', default: 1, minimum: 0, maximum: 1, description: 'Fraction of requests traced, 0..1, by trace id; denied requests are always traced.' },
  traceRespectParent: { env: 'PALISADE_TRACE_RESPECT_PARENT', type: 'boolean', default: true, description: 'Follow the client\'s traceparent sampled flag (parent-based sampling); false = apply the ratio to every request.' },
} as const satisfies Record<string, SettingSpec>;

type SpecType<S extends SettingSpec> = S['type'] extends 'string' ? string : S['type'] extends 'boolean' ? boolean : number;
export type Settings = { readonly [K in keyof typeof SETTINGS]: SpecType<(typeof SETTINGS)[K]> };

const schema = schemaOfSpecs(SETTINGS);
const validate = createAjv({ coerceTypes: true }).compile(schema);

/** Reads settings from an environment (and overrides, e.g. CLI flags). */
export function loadSettings(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<keyof Settings, unknown>> = {}): Settings {
  const data = readEnvSpecs(SETTINGS, env);
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) data[k] = v;
  if (!validate(data)) {
    const lines = describeAjvErrors(validate.errors, 'settings', data).map((line) => {
      // Name the environment variable the user actually sets.
      const key = /^settings\/(\w+)/.exec(line)?.[1] as keyof typeof SETTINGS | undefined;
      return key && SETTINGS[key] ? `${SETTINGS[key].env}: ${line.slice(line.indexOf(':') + 2)}` : line;
    });
    throw new PalisadeError('CONFIG_INVALID', `invalid settings:\n  - ${lines.join('\n  - ')}`);
  }
  return deepFreeze(data as Settings);
}

/** Markdown table of the settings, for the README. */
export function settingsTable(): string {
  return envSpecsTable(SETTINGS);
}
