// The kafkajs client from settings: clear errors for incomplete TLS/SASL settings,
// secrets read from files (never logged), kafkajs log entries reduced to safe fields.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kafkajs from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { loadSettings } from '../../src/config/settings.ts';
import { createKafkaClient, kafkaLogCreator, parseBrokers } from '../../src/kafka/client.ts';
import { createLogger } from '../../src/log/logger.ts';
import { captureLog } from '../support/log-capture.ts';

const dir = mkdtempSync(join(tmpdir(), 'palisade-kafka-client-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const silent = createLogger({ level: 'silent' });

function settings(env: Record<string, string>) {
  return loadSettings({ PALISADE_KAFKA_BROKERS: '127.0.0.1:19092', ...env });
}


describe('kafka client from settings', () => {
  it('parses the broker list and refuses malformed entries', () => {
    expect(parseBrokers(' a:9092, b:9093 ,,')).toEqual(['a:9092', 'b:9093']);
    expect(parseBrokers('')).toEqual([]);
    expect(() => createKafkaClient(settings({ PALISADE_KAFKA_BROKERS: 'nohost' }), silent)).toThrow(/"nohost" is not host:port/);
  });

  it('names the missing or contradictory TLS/SASL setting', () => {
    expect(() => createKafkaClient(settings({ PALISADE_KAFKA_TLS_CA: '/x/ca.pem' }), silent)).toThrow(/PALISADE_KAFKA_TLS is false/);
    expect(() => createKafkaClient(settings({ PALISADE_KAFKA_TLS: 'true', PALISADE_KAFKA_TLS_CERT: '/x/c.pem' }), silent)).toThrow(/TLS_CERT and PALISADE_KAFKA_TLS_KEY go together/);
    expect(() => createKafkaClient(settings({ PALISADE_KAFKA_TLS: 'true', PALISADE_KAFKA_TLS_CA: join(dir, 'absent.pem') }), silent)).toThrow(/PALISADE_KAFKA_TLS_CA file .* unreadable: ENOENT/);
    expect(() => createKafkaClient(settings({ PALISADE_KAFKA_SASL_MECHANISM: 'scram-sha-512' }), silent)).toThrow(/PALISADE_KAFKA_SASL_USERNAME is required/);
    expect(() => createKafkaClient(settings({ PALISADE_KAFKA_SASL_MECHANISM: 'scram-sha-256', PALISADE_KAFKA_SASL_USERNAME: 'u' }), silent)).toThrow(/PALISADE_KAFKA_SASL_PASSWORD_FILE is required/);
    expect(() => createKafkaClient(settings({ PALISADE_KAFKA_SASL_MECHANISM: 'oauthbearer' }), silent)).toThrow(/PALISADE_KAFKA_SASL_OAUTH_TOKEN_FILE is required/);
    const empty = join(dir, 'empty');
    writeFileSync(empty, '\n');
    expect(() => createKafkaClient(settings({ PALISADE_KAFKA_SASL_MECHANISM: 'scram-sha-256', PALISADE_KAFKA_SASL_USERNAME: 'u', PALISADE_KAFKA_SASL_PASSWORD_FILE: empty }), silent)).toThrow(/is empty/);
    expect(() => loadSettings({ PALISADE_KAFKA_SASL_MECHANISM: 'plain' })).toThrow(/PALISADE_KAFKA_SASL_MECHANISM/);
  });

  it('never puts a secret in an error message', () => {
    const file = join(dir, 'password');
    writeFileSync(file, 'hunter2-secret\n');
    const client = createKafkaClient(settings({ PALISADE_KAFKA_SASL_MECHANISM: 'scram-sha-256', PALISADE_KAFKA_SASL_USERNAME: 'u', PALISADE_KAFKA_SASL_PASSWORD_FILE: file }), silent);
    expect(client).toBeDefined();
    rmSync(file);
    // The file is re-read at authentication; its absence is reported by name, not content.
    let message = '';
    try {
      createKafkaClient(settings({ PALISADE_KAFKA_SASL_MECHANISM: 'scram-sha-256', PALISADE_KAFKA_SASL_USERNAME: 'u', PALISADE_KAFKA_SASL_PASSWORD_FILE: file }), silent);
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/PALISADE_KAFKA_SASL_PASSWORD file .* unreadable/);
    expect(message).not.toContain('hunter2');
  });

  it('logs kafkajs entries at warn and above with allow-listed fields only, folding repeats', () => {
    const { logger, lines } = captureLog();
    const log = kafkaLogCreator(logger)!(kafkajs.logLevel.WARN);
    const entry = (level: number, message: string, extra: Record<string, unknown> = {}) => ({ namespace: 'Connection', level, label: 'X', log: { timestamp: '', message, ...extra } });
    log(entry(kafkajs.logLevel.INFO, 'connected'));
    log(entry(kafkajs.logLevel.DEBUG, 'request', { sasl: { password: 'hunter2' } }));
    log(entry(kafkajs.logLevel.ERROR, 'Connection error', { broker: 'b:9092', error: 'ECONNREFUSED', sasl: { mechanism: 'scram-sha-256', password: 'hunter2' }, ssl: { key: 'PRIVATE KEY' } }));
    log(entry(kafkajs.logLevel.ERROR, 'Connection error', { broker: 'b:9092' }));
    log(entry(kafkajs.logLevel.WARN, 'Limiting retries for the idempotent producer may invalidate EoS guarantees'));
    const out = lines();
    expect(out).toHaveLength(1);
    const line = JSON.parse(out[0]!) as Record<string, unknown>;
    expect(line).toMatchObject({ level: 50, msg: 'kafka: Connection error', kafka: 'Connection', broker: 'b:9092', error: 'ECONNREFUSED' });
    expect(out[0]).not.toContain('hunter2');
    expect(out[0]).not.toContain('PRIVATE KEY');
    expect(line).not.toHaveProperty('sasl');
  });
});
