// The one line a Kafka command prints for a Kafka failure (src/cli/kafka-required.ts), for the
// errors kafkajs really throws: built here with kafkajs's own error classes and codes.
import kafkajs from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { kafkaProblem } from '../../src/cli/kafka-required.ts';

const { KafkaJSConnectionError, KafkaJSNumberOfRetriesExceeded, KafkaJSProtocolError, KafkaJSSASLAuthenticationError } = kafkajs;
const settings = { kafkaBrokers: 'kafka-0:9092,kafka-1:9092', kafkaTls: true, kafkaSaslMechanism: 'scram-sha-512' };

function protocol(type: string, code: number, message: string): Error {
  return new KafkaJSProtocolError({ type, code, retriable: false, message } as unknown as Error);
}

describe('kafkaProblem', () => {
  it('unreachable: the broker, the cause and what to check (TLS settings too when TLS is on)', () => {
    const conn = new KafkaJSConnectionError('Connection error: connect ECONNREFUSED 10.0.0.9:9092', { broker: 'kafka-1:9092' });
    // What kafkajs's retrier throws once it gives up connecting.
    const wrapped = new KafkaJSNumberOfRetriesExceeded(conn, { retryCount: 3, retryTime: 900 });
    expect(kafkaProblem(wrapped, settings)).toBe(
      'cannot reach Kafka at kafka-1:9092 (connect ECONNREFUSED 10.0.0.9:9092); check PALISADE_KAFKA_BROKERS (or --brokers) and PALISADE_KAFKA_TLS_*, that the brokers are up and that this machine can reach them',
    );
  });

  it('a missing topic and a refused one are told apart from an unreachable cluster', () => {
    const unknown = new KafkaJSNumberOfRetriesExceeded(protocol('UNKNOWN_TOPIC_OR_PARTITION', 3, 'This server does not host this topic-partition'), { retryCount: 5, retryTime: 100 });
    expect(kafkaProblem(unknown, settings, 'palisade.blocklist.v1')).toBe(
      'Kafka at kafka-0:9092, kafka-1:9092 has no topic palisade.blocklist.v1 (This server does not host this topic-partition); check the PALISADE_KAFKA_TOPIC_* name, that the topic was created, and that this principal may use it',
    );
    const denied = new KafkaJSNumberOfRetriesExceeded(protocol('TOPIC_AUTHORIZATION_FAILED', 29, 'Not authorized to access topics: [Topic authorization failed]'), { retryCount: 0, retryTime: 100 });
    expect(kafkaProblem(denied, settings, 'palisade.alerts.v1')).toBe(
      'Kafka at kafka-0:9092, kafka-1:9092 refused the use of topic palisade.alerts.v1 (Not authorized to access topics: [Topic authorization failed]); check the ACLs of this principal',
    );
  });

  it('a refused SASL login names the settings to check, never a secret', () => {
    const e = new (KafkaJSSASLAuthenticationError as unknown as new (message: string) => Error)('SASL SCRAM SHA512 authentication failed: Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512');
    const line = kafkaProblem(e, settings);
    expect(line).toMatch(/^Kafka at kafka-0:9092, kafka-1:9092 refused the authentication \(SASL SCRAM SHA512 authentication failed: .*\); check PALISADE_KAFKA_SASL_MECHANISM, PALISADE_KAFKA_SASL_USERNAME and the password or token file$/);
  });

  it("an error that is not Kafka's is left alone (a bug keeps its stack)", () => {
    expect(kafkaProblem(new TypeError('x is not a function'), settings)).toBeNull();
  });
});
