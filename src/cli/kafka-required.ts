/**
 * Kafka for the commands that need it (detector, blocklist, alerts): settings with a clear error
 * when Kafka is not configured, a client that identifies the command to the brokers, and one
 * readable line instead of kafkajs's logs and stack when the brokers cannot be used.
 */
import type { Kafka } from 'kafkajs';
import { loadSettings, type Settings } from '../config/settings.ts';
import { PalisadeError } from '../errors/codes.ts';
import { createKafkaClient, parseBrokers } from '../kafka/client.ts';
import { createLogger } from '../log/logger.ts';
import { CommandFailed } from './args.ts';

export function kafkaSettings(command: string, env: NodeJS.ProcessEnv = process.env, brokersFlag?: string, clientId?: string): Settings {
  const settings = loadSettings(env, { ...(brokersFlag ? { kafkaBrokers: brokersFlag } : {}), ...(clientId ? { kafkaClientId: clientId } : {}) });
  if (parseBrokers(settings.kafkaBrokers).length === 0) {
    throw new PalisadeError(
      'CONFIG_INVALID',
      `${command} needs Kafka: set PALISADE_KAFKA_BROKERS (or --brokers) to the cluster the sidecars publish to, e.g. PALISADE_KAFKA_BROKERS=kafka-0.kafka:9092. ` +
        'Without Kafka the detector runs in-process (palisade demo) and the block list is the sidecar\'s own.',
    );
  }
  return settings;
}

/** The detector's Kafka client id: PALISADE_KAFKA_CLIENT_ID when set, else its own (not the sidecar's default). */
export function detectorClientId(env: NodeJS.ProcessEnv): string {
  const explicit = env['PALISADE_KAFKA_CLIENT_ID'];
  return explicit !== undefined && explicit !== '' ? explicit : 'palisade-detector';
}

export interface CliKafka {
  readonly kafka: Kafka;
  readonly settings: Settings;
  /** "palisade blocklist list": how failures are prefixed. */
  readonly command: string;
  /** Runs `fn`; a Kafka failure becomes one CommandFailed line (which broker, what to check; `topic` names the topic `fn` uses). */
  use<T>(fn: () => Promise<T>, topic?: string): Promise<T>;
}

/**
 * The Kafka client of a short-lived command. Its client id is `palisade-cli-<group>` (broker logs
 * and quotas tell an operator's command from a sidecar; PALISADE_KAFKA_CLIENT_ID is the sidecar's).
 * kafkajs's own log lines are silent unless PALISADE_LOG_LEVEL is debug or trace: the command's
 * outcome is the one line `use` prints.
 */
export function cliKafka(group: string, command: string, brokersFlag?: string, env: NodeJS.ProcessEnv = process.env): CliKafka {
  const settings = kafkaSettings(command, env, brokersFlag, `palisade-cli-${group}`);
  const level = env['PALISADE_LOG_LEVEL'] === 'debug' || env['PALISADE_LOG_LEVEL'] === 'trace' ? env['PALISADE_LOG_LEVEL'] : 'silent';
  const kafka = createKafkaClient(settings, createLogger({ level, name: `palisade-cli-${group}` }));
  return {
    kafka,
    settings,
    command,
    async use<T>(fn: () => Promise<T>, topic?: string): Promise<T> {
      try {
        return await fn();
      } catch (err) {
        const line = kafkaProblem(err, settings, topic);
        if (line) throw new CommandFailed(command, line);
        throw err;
      }
    },
  };
}

interface ErrorLike {
  readonly name?: string;
  readonly message?: string;
  readonly broker?: string;
  readonly type?: string;
  readonly cause?: unknown;
  readonly originalError?: unknown;
}

/** The error and the errors it wraps, outermost first. */
function chain(err: unknown): ErrorLike[] {
  const out: ErrorLike[] = [];
  let e: unknown = err;
  while (e && typeof e === 'object' && out.length < 8 && !out.includes(e as ErrorLike)) {
    out.push(e as ErrorLike);
    e = (e as ErrorLike).cause ?? (e as ErrorLike).originalError;
  }
  return out;
}

/**
 * One line for a Kafka failure: what went wrong, at which broker, what to check; null when the
 * error is not Kafka's (a bug keeps its stack).
 */
export function kafkaProblem(err: unknown, s: Pick<Settings, 'kafkaBrokers' | 'kafkaTls' | 'kafkaSaslMechanism'>, topic?: string): string | null {
  const errors = chain(err);
  const names = errors.map((e) => e.name ?? '');
  if (!names.some((n) => n.startsWith('KafkaJS')) && !/reading .* timed out/.test(errors[0]?.message ?? '')) return null;
  const brokers = parseBrokers(s.kafkaBrokers).join(', ');
  const conn = errors.find((e) => e.name === 'KafkaJSConnectionError' || e.name === 'KafkaJSConnectionClosedError');
  const at = conn?.broker ?? brokers;
  const cause = (conn ?? errors[errors.length - 1])?.message?.replace(/^Connection error: /, '') ?? 'unknown error';
  if (names.includes('KafkaJSSASLAuthenticationError')) {
    return `Kafka at ${brokers} refused the authentication (${errors.find((e) => e.name === 'KafkaJSSASLAuthenticationError')?.message ?? 'SASL'}); check PALISADE_KAFKA_SASL_MECHANISM, PALISADE_KAFKA_SASL_USERNAME and the password or token file`;
  }
  const unknownTopic = errors.find((e) => e.type === 'UNKNOWN_TOPIC_OR_PARTITION');
  if (unknownTopic) {
    const which = topic ? `topic ${topic}` : 'the topic';
    return `Kafka at ${brokers} has no ${which} (${unknownTopic.message ?? 'unknown topic'}); check the PALISADE_KAFKA_TOPIC_* name, that the topic was created, and that this principal may use it`;
  }
  const denied = errors.find((e) => typeof e.type === 'string' && e.type.endsWith('_AUTHORIZATION_FAILED'));
  if (denied) {
    return `Kafka at ${brokers} refused ${topic ? `the use of topic ${topic}` : 'the request'} (${denied.message ?? denied.type}); check the ACLs of this principal`;
  }
  if (conn || names.includes('KafkaJSBrokerNotFound') || names.includes('KafkaJSRequestTimeoutError') || (names.includes('KafkaJSNumberOfRetriesExceeded') && !errors.some((e) => e.name === 'KafkaJSProtocolError'))) {
    const tls = s.kafkaTls ? ' and PALISADE_KAFKA_TLS_*' : '';
    return `cannot reach Kafka at ${at} (${cause}); check PALISADE_KAFKA_BROKERS (or --brokers)${tls}, that the brokers are up and that this machine can reach them`;
  }
  // Something else the brokers answered: its innermost message says most.
  return `Kafka at ${brokers}: ${errors[errors.length - 1]?.message ?? 'failed'}; check PALISADE_KAFKA_BROKERS (or --brokers) and the brokers' health`;
}
