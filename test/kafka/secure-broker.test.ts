// TLS and SASL for a production cluster, against a real broker with a SASL_SSL
// listener (test/kafka/secure-broker.ts): SCRAM-SHA-256/512 with the password from
// a file, OAUTHBEARER with the token re-read from its file at each authentication,
// mutual TLS; wrong credentials fail without the secret reaching a log line.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSettings, type Settings } from '../../src/config/settings.ts';
import { createKafkaSink } from '../../src/decision/sinks/kafka/index.ts';
import { createKafkaClient } from '../../src/kafka/client.ts';
import { createLogger } from '../../src/log/logger.ts';
import { delivered, makeRecord, uniqueTopic } from '../decision/sinks/kafka/support.ts';
import { captureLog } from '../support/log-capture.ts';
import { startSecureBroker, unsecuredJwt, type SecureBroker } from './secure-broker.ts';


describe('Kafka client with TLS and SASL (private SASL_SSL broker)', () => {
  let broker: SecureBroker;
  let dir: string;
  let passwordFile: string;
  let tokenFile: string;

  beforeAll(async () => {
    broker = await startSecureBroker();
    dir = mkdtempSync(join(tmpdir(), 'palisade-kafka-secrets-'));
    passwordFile = join(dir, 'password');
    writeFileSync(passwordFile, `${broker.scramPassword}\n`);
    tokenFile = join(dir, 'token');
  }, 300_000);
  afterAll(async () => {
    await broker?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  function settings(env: Record<string, string>): Settings {
    return loadSettings({
      PALISADE_KAFKA_BROKERS: broker.bootstrap,
      PALISADE_KAFKA_TLS: 'true',
      PALISADE_KAFKA_TLS_CA: broker.caFile,
      PALISADE_KAFKA_TLS_CERT: broker.client.cert,
      PALISADE_KAFKA_TLS_KEY: broker.client.key,
      PALISADE_KAFKA_TOPIC_DECISIONS: uniqueTopic('secure-decisions'),
      PALISADE_KAFKA_TOPIC_BLOCKLIST: uniqueTopic('secure-blocklist'),
      PALISADE_KAFKA_TOPIC_ALERTS: uniqueTopic('secure-alerts'),
      PALISADE_KAFKA_CONNECT_TIMEOUT_MS: '5000',
      ...env,
    });
  }

  it('SCRAM-SHA-256 over mutual TLS: the sink creates its topics and publishes', { timeout: 120_000 }, async () => {
    const s = settings({ PALISADE_KAFKA_SASL_MECHANISM: 'scram-sha-256', PALISADE_KAFKA_SASL_USERNAME: broker.scramUser, PALISADE_KAFKA_SASL_PASSWORD_FILE: passwordFile });
    const logs = captureLog();
    const sink = await createKafkaSink(s, logs.logger);
    for (let i = 0; i < 50; i++) sink.write(makeRecord(i, `spiffe://secure/c${i % 3}`));
    await delivered(sink, 50);
    expect(sink.stats()).toMatchObject({ accepted: 50, delivered: 50, dropped: 0, connected: true });
    await sink.close();
    const admin = createKafkaClient(s, logs.logger).admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets(s.kafkaTopicDecisions);
      expect(offsets.reduce((n, p) => n + Number(p.high), 0)).toBe(50);
    } finally {
      await admin.disconnect();
    }
    expect(logs.text()).not.toContain(broker.scramPassword);
  });

  it('SCRAM-SHA-512 authenticates; a wrong password is refused and never logged', { timeout: 120_000 }, async () => {
    const ok = createKafkaClient(settings({ PALISADE_KAFKA_SASL_MECHANISM: 'scram-sha-512', PALISADE_KAFKA_SASL_USERNAME: broker.scramUser, PALISADE_KAFKA_SASL_PASSWORD_FILE: passwordFile }), createLogger({ level: 'silent' })).admin();
    await ok.connect();
    expect(Array.isArray(await ok.listTopics())).toBe(true);
    await ok.disconnect();

    const wrongFile = join(dir, 'wrong');
    writeFileSync(wrongFile, 'not-the-password-0123');
    const logs = captureLog();
    const bad = createKafkaClient(settings({ PALISADE_KAFKA_SASL_MECHANISM: 'scram-sha-512', PALISADE_KAFKA_SASL_USERNAME: broker.scramUser, PALISADE_KAFKA_SASL_PASSWORD_FILE: wrongFile }), logs.logger).admin();
    await expect(bad.connect()).rejects.toThrow(/SASL SCRAM SHA512 authentication failed/);
    await bad.disconnect().catch(() => undefined);
    expect(logs.text()).toContain('authentication failed');
    expect(logs.text()).not.toContain('not-the-password-0123');
  });

  it('OAUTHBEARER re-reads the token file at each authentication', { timeout: 120_000 }, async () => {
    writeFileSync(tokenFile, 'not-a-jwt'); // the broker cannot validate this one
    const logs = captureLog();
    const kafka = createKafkaClient(settings({ PALISADE_KAFKA_SASL_MECHANISM: 'oauthbearer', PALISADE_KAFKA_SASL_OAUTH_TOKEN_FILE: tokenFile }), logs.logger);
    const first = kafka.admin();
    // kafkajs does not read the broker's OAUTHBEARER error challenge, so connect() may look fine;
    // the broker closes the unauthenticated connection and the first request fails.
    await expect(first.connect().then(() => first.listTopics())).rejects.toThrow();
    await first.disconnect().catch(() => undefined);
    // The token is rotated in place (as a Kubernetes Secret update does): the same client picks it up.
    const fresh = unsecuredJwt('palisade-sidecar', 3600);
    writeFileSync(tokenFile, `${fresh}\n`);
    const second = kafka.admin();
    await second.connect();
    expect(Array.isArray(await second.listTopics())).toBe(true);
    await second.disconnect();
    expect(logs.text()).not.toContain(fresh);
  });

  it('refuses a client without a certificate when the broker requires mutual TLS', { timeout: 120_000 }, async () => {
    const s = settings({ PALISADE_KAFKA_SASL_MECHANISM: 'scram-sha-256', PALISADE_KAFKA_SASL_USERNAME: broker.scramUser, PALISADE_KAFKA_SASL_PASSWORD_FILE: passwordFile });
    const admin = createKafkaClient({ ...s, kafkaTlsCert: '', kafkaTlsKey: '' }, createLogger({ level: 'silent' })).admin();
    await expect(admin.connect()).rejects.toThrow();
    await admin.disconnect().catch(() => undefined);
  });
});
