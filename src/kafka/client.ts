/**
 * Builds the kafkajs client from process settings, for every Palisade process
 * that talks to Kafka (the sidecar's decision producer, the detector).
 *
 * Secrets: the SCRAM password and the OAUTHBEARER token are read from files at
 * each authentication (so a rotated Kubernetes Secret applies to the next
 * connection without a restart) and never reach a log line: kafkajs log
 * entries are copied field by field from an allow-list before they go to pino.
 */
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Kafka, logLevel as KafkaLogLevel, type Consumer, type KafkaConfig, type LogEntry, type SASLOptions } from 'kafkajs';
import type { Logger } from 'pino';
import { PalisadeError } from '../errors/codes.ts';
import { backoffMs } from '../util/backoff.ts';
import { installKafkaCodecs } from './codecs.ts';
import { speedUpKafkajsEncoder } from './encoder-speed.ts';
import { speedUpKafkajsRecordBatches } from './record-batch.ts';
import { fixKafkajsRequestQueueTimer } from './request-queue-timer.ts';

// Before any client exists: kafkajs's idle 1 ms timer loop and its TimeoutNegativeWarning (see the module).
fixKafkajsRequestQueueTimer();
// Every process that talks to Kafka compresses and decompresses alike (zstd needs it on both sides).
installKafkaCodecs();
// Varints and buffer growth without a Buffer per varint or zero-filling (same bytes; see the module).
speedUpKafkajsEncoder();
// Each partition's records written into one buffer, not an Encoder per record and header (same bytes).
speedUpKafkajsRecordBatches();

/** The settings this module reads (a subset of src/config/settings.ts, so the detector can pass its own). */
export interface KafkaClientSettings {
  readonly kafkaBrokers: string;
  readonly kafkaClientId: string;
  readonly kafkaTls: boolean;
  readonly kafkaTlsCa: string;
  readonly kafkaTlsCert: string;
  readonly kafkaTlsKey: string;
  readonly kafkaSaslMechanism: string;
  readonly kafkaSaslUsername: string;
  readonly kafkaSaslPasswordFile: string;
  readonly kafkaOauthTokenFile: string;
  readonly kafkaConnectTimeoutMs: number;
  readonly kafkaRequestTimeoutMs: number;
}

/** "a:9092, b:9092" -> ["a:9092", "b:9092"]; empty means Kafka is off. */
export function parseBrokers(list: string): string[] {
  return list
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b.length > 0);
}

function readSecretFile(path: string, what: string): string {
  try {
    // Secrets mounted from Kubernetes often end in a newline that is not part of the secret.
    const text = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
    if (text.length === 0) throw new PalisadeError('CONFIG_INVALID', `${what} file ${path} is empty`);
    return text;
  } catch (err) {
    if (err instanceof PalisadeError) throw err;
    throw new PalisadeError('CONFIG_INVALID', `${what} file ${path} unreadable: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

function tlsOptions(s: KafkaClientSettings): ConnectionOptions | undefined {
  if (!s.kafkaTls) {
    if (s.kafkaTlsCa || s.kafkaTlsCert || s.kafkaTlsKey) throw new PalisadeError('CONFIG_INVALID', 'PALISADE_KAFKA_TLS_CA/CERT/KEY are set but PALISADE_KAFKA_TLS is false');
    return undefined;
  }
  if (Boolean(s.kafkaTlsCert) !== Boolean(s.kafkaTlsKey)) throw new PalisadeError('CONFIG_INVALID', 'PALISADE_KAFKA_TLS_CERT and PALISADE_KAFKA_TLS_KEY go together');
  const o: ConnectionOptions = { rejectUnauthorized: true };
  if (s.kafkaTlsCa) o.ca = readSecretFile(s.kafkaTlsCa, 'PALISADE_KAFKA_TLS_CA');
  if (s.kafkaTlsCert) o.cert = readSecretFile(s.kafkaTlsCert, 'PALISADE_KAFKA_TLS_CERT');
  if (s.kafkaTlsKey) o.key = readSecretFile(s.kafkaTlsKey, 'PALISADE_KAFKA_TLS_KEY');
  return o;
}

function saslOptions(s: KafkaClientSettings): SASLOptions | undefined {
  const mechanism = s.kafkaSaslMechanism;
  if (!mechanism) return undefined;
  if (mechanism === 'scram-sha-256' || mechanism === 'scram-sha-512') {
    if (!s.kafkaSaslUsername) throw new PalisadeError('CONFIG_INVALID', `PALISADE_KAFKA_SASL_USERNAME is required for ${mechanism}`);
    if (!s.kafkaSaslPasswordFile) throw new PalisadeError('CONFIG_INVALID', `PALISADE_KAFKA_SASL_PASSWORD_FILE is required for ${mechanism}`);
    const file = s.kafkaSaslPasswordFile;
    readSecretFile(file, 'PALISADE_KAFKA_SASL_PASSWORD'); // fail at start, not at the first connection
    // kafkajs reads `password` when it authenticates a new connection: a getter re-reads the file.
    const sasl = { mechanism, username: s.kafkaSaslUsername } as { mechanism: typeof mechanism; username: string; password: string };
    Object.defineProperty(sasl, 'password', { enumerable: false, get: () => readSecretFile(file, 'PALISADE_KAFKA_SASL_PASSWORD') });
    return sasl;
  }
  if (mechanism === 'oauthbearer') {
    if (!s.kafkaOauthTokenFile) throw new PalisadeError('CONFIG_INVALID', 'PALISADE_KAFKA_SASL_OAUTH_TOKEN_FILE is required for oauthbearer');
    const file = s.kafkaOauthTokenFile;
    readSecretFile(file, 'PALISADE_KAFKA_SASL_OAUTH_TOKEN');
    return { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: readSecretFile(file, 'PALISADE_KAFKA_SASL_OAUTH_TOKEN') }) };
  }
  throw new PalisadeError('CONFIG_INVALID', `unknown PALISADE_KAFKA_SASL_MECHANISM "${mechanism}"`);
}

/** Fields of a kafkajs log entry that may be logged; anything else (configs, payloads) is left out. */
const LOG_FIELDS = ['broker', 'clientId', 'topic', 'partition', 'groupId', 'retryCount', 'retryTime', 'error', 'correlationId', 'size'] as const;
/**
 * kafkajs warnings that are decisions, not problems: Palisade's producer limits kafkajs's own
 * retries on purpose (its spool retries, with a fresh producer id; see publisher.ts).
 */
const EXPECTED = new Set(['Limiting retries for the idempotent producer may invalidate EoS guarantees']);
/** The same kafkajs message is logged at most once per this many ms (an outage repeats them per retry). */
const REPEAT_MS = 10_000;

/**
 * kafkajs log entries -> pino at warn and above. Repeats of one message are
 * folded (with a count) because a broker outage logs the same error per retry.
 */
export function kafkaLogCreator(logger: Logger): KafkaConfig['logCreator'] {
  const last = new Map<string, { at: number; suppressed: number }>();
  return () =>
    ({ namespace, level, log }: LogEntry) => {
      if (level > KafkaLogLevel.WARN || level === KafkaLogLevel.NOTHING) return;
      const message = String(log.message);
      if (EXPECTED.has(message)) return;
      const now = Date.now();
      const seen = last.get(message);
      if (seen && now - seen.at < REPEAT_MS) {
        seen.suppressed++;
        return;
      }
      if (last.size > 1000) last.clear();
      last.set(message, { at: now, suppressed: 0 });
      const fields: Record<string, unknown> = { kafka: namespace };
      for (const k of LOG_FIELDS) if (log[k] !== undefined) fields[k] = typeof log[k] === 'object' ? String(log[k]) : log[k];
      if (seen && seen.suppressed > 0) fields['repeated'] = seen.suppressed;
      if (level === KafkaLogLevel.ERROR) logger.error(fields, `kafka: ${message}`);
      else logger.warn(fields, `kafka: ${message}`);
    };
}

/** The kafkajs client for these settings. Connects lazily (producers/admins connect themselves). */
export function createKafkaClient(s: KafkaClientSettings, logger: Logger): Kafka {
  const brokers = parseBrokers(s.kafkaBrokers);
  if (brokers.length === 0) throw new PalisadeError('CONFIG_INVALID', 'PALISADE_KAFKA_BROKERS is empty');
  for (const b of brokers) if (!/^[^\s:]+:\d{1,5}$/.test(b)) throw new PalisadeError('CONFIG_INVALID', `PALISADE_KAFKA_BROKERS: "${b}" is not host:port`);
  const ssl = tlsOptions(s);
  const sasl = saslOptions(s);
  return new Kafka({
    clientId: s.kafkaClientId,
    brokers,
    ...(ssl ? { ssl } : {}),
    ...(sasl ? { sasl } : {}),
    connectionTimeout: s.kafkaConnectTimeoutMs,
    authenticationTimeout: s.kafkaConnectTimeoutMs,
    requestTimeout: s.kafkaRequestTimeoutMs,
    // Connect/metadata retries: short, because the callers own the long retry (the spool, the detector's loop).
    retry: { initialRetryTime: 100, maxRetryTime: 2000, retries: 3 },
    logLevel: KafkaLogLevel.WARN,
    logCreator: kafkaLogCreator(logger),
  });
}

/**
 * A consumer's `retry` option that lets kafkajs restart the consumer after a
 * crash only while `stopped()` is false. kafkajs restarts a crashed consumer
 * after a delay, and disconnecting during a fetch can crash it ("No broker
 * available"): without this a consumer came back after its owner had closed
 * it, and kept a drained sidecar alive until its grace period ran out. Every
 * consumer Palisade creates uses it. `retries` stays kafkajs's consumer default.
 */
export function retryUntilStopped(stopped: () => boolean): { retries: number; restartOnFailure: (err: Error) => Promise<boolean> } {
  return { retries: 5, restartOnFailure: async () => !stopped() };
}

/** Longest pause before starting a consumer again after a crash kafkajs does not restart, ms. */
const FATAL_RESTART_MAX_MS = 10_000;

/**
 * Starts a long-lived consumer again (`start`: connect, subscribe, run) after a crash kafkajs
 * will not restart, until `stopped()`. kafkajs restarts only after errors it deems retriable;
 * after any other (KafkaJSGroupCoordinatorNotFound while a fresh broker creates its offsets
 * topic, seen in CI; an error thrown by our own batch handler) it disconnects the consumer and
 * leaves it so while the process runs on: a detector that consumes nothing, a sidecar whose
 * block list no longer follows the topic. Backoff 0.5 s doubling to 10 s, reset by a group join.
 */
export function restartAfterFatalCrash(consumer: Consumer, start: () => Promise<void>, o: { stopped: () => boolean; logger: Logger; what: string }): void {
  let attempt = 0;
  const schedule = (err: Error) => {
    if (o.stopped()) return;
    const wait = backoffMs(attempt++, 500, FATAL_RESTART_MAX_MS);
    o.logger.warn({ err: err.message, kind: err.name, retryInMs: wait }, `${o.what}: consumer stopped on an error kafkajs does not retry; starting it again`);
    setTimeout(() => {
      if (o.stopped()) return;
      start().catch((e: Error) => schedule(e));
    }, wait).unref();
  };
  consumer.on(consumer.events.GROUP_JOIN, () => {
    attempt = 0;
  });
  consumer.on(consumer.events.CRASH, (e) => {
    if (!e.payload.restart) schedule(e.payload.error as Error);
  });
}

/**
 * Rejects with the error once `consumer` crashes and will not be restarted (kafkajs deemed the
 * error fatal, or the owner stopped it), for one-shot readers racing it against "read to the
 * end": without it they waited out their whole timeout, and the detector's restore then went
 * on with the part it had read.
 */
export function fatalCrash(consumer: Consumer): Promise<never> {
  const crashed = new Promise<never>((_resolve, reject) => {
    consumer.on(consumer.events.CRASH, (e) => {
      if (!e.payload.restart) reject(e.payload.error as Error);
    });
  });
  // A crash after the reader is done (its own disconnect) has nobody waiting: not an unhandled rejection.
  crashed.catch(() => undefined);
  return crashed;
}
