/**
 * /readyz: ready only with a policy, not while shutting down, and (with Kafka)
 * not before the block list has been rebuilt from its compacted topic.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { publishManualBlock } from '../../src/blocklist/kafka-ops.ts';
import { blockListStore } from '../../src/blocklist/store.ts';
import { loadSettings } from '../../src/config/settings.ts';
import { createKafkaClient } from '../../src/kafka/client.ts';
import { ensureTopics, palisadeTopics } from '../../src/kafka/topics.ts';
import { createLogger } from '../../src/log/logger.ts';
import { startHarness, type Harness } from '../support/harness.ts';

const POLICY = `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: ready }
spec:
  authorization:
    rules: [{ id: all, paths: ["/**"], public: true }]
`;

async function readyz(h: Harness): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(`http://127.0.0.1:${h.sidecar.adminPort}/readyz`);
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

describe('/readyz with the Kafka block-list feed', () => {
  const brokers = process.env['PALISADE_KAFKA_BROKERS'] ?? '127.0.0.1:19092';
  const prefix = `ready-${randomUUID().slice(0, 8)}`;
  const env = {
    PALISADE_KAFKA_BROKERS: brokers,
    PALISADE_KAFKA_TOPIC_DECISIONS: `${prefix}.decisions`,
    PALISADE_KAFKA_TOPIC_BLOCKLIST: `${prefix}.blocklist`,
    PALISADE_KAFKA_TOPIC_ALERTS: `${prefix}.alerts`,
    PALISADE_KAFKA_TOPIC_REPLICATION: '1',
  };
  const logger = createLogger({ level: 'silent' });
  const kafka = createKafkaClient(loadSettings(env), logger);
  const harnesses: Harness[] = [];
  beforeAll(async () => {
    // The block-list topic exists and holds an entry before the sidecar starts (as in a running cluster).
    const admin = kafka.admin();
    await admin.connect();
    try {
      const t = palisadeTopics(loadSettings(env));
      await ensureTopics(admin, [t.blocklist], logger);
    } finally {
      await admin.disconnect();
    }
    await publishManualBlock(kafka, env.PALISADE_KAFKA_TOPIC_BLOCKLIST, { kind: 'ip', value: '203.0.113.7', reason: 'readyz test', expiresAt: null, actor: 'test' });
  });
  afterAll(async () => {
    await Promise.allSettled(harnesses.map((h) => h.close()));
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [env.PALISADE_KAFKA_TOPIC_BLOCKLIST] }).catch(() => undefined);
    await admin.disconnect();
  });

  it('turns ready once the block list is rebuilt (holding what the topic holds), and names the policy', async () => {
    // A deadline far away: only the rebuild can make it ready within this test.
    const h = await startHarness(POLICY, { env: { ...env, PALISADE_BLOCKLIST_READY_TIMEOUT_MS: '600000' } });
    harnesses.push(h);
    const first = await readyz(h);
    if (first.status === 503) expect(first.body['reason']).toBe('block list not yet rebuilt from Kafka');
    let r = first;
    const end = Date.now() + 60_000;
    while (r.status !== 200 && Date.now() < end) {
      await new Promise((res) => setTimeout(res, 100));
      r = await readyz(h);
    }
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'ready', policy: { name: 'ready' } });
    expect(blockListStore(h.services).get('ip', '203.0.113.7')).toMatchObject({ source: 'manual', reason: 'readyz test' });
  });

  it('without its topic, stays not ready until PALISADE_BLOCKLIST_READY_TIMEOUT_MS, then takes traffic', async () => {
    const deadlineMs = 4000;
    const t0 = Date.now();
    const h = await startHarness(POLICY, { env: { ...env, PALISADE_KAFKA_TOPIC_BLOCKLIST: `${prefix}.missing`, PALISADE_BLOCKLIST_READY_TIMEOUT_MS: String(deadlineMs) } });
    harnesses.push(h);
    let r = await readyz(h);
    // The deadline counts from the sidecar's start, which is after t0: a 503 seen before t0 + deadline must be this one.
    if (Date.now() < t0 + deadlineMs) expect(r).toMatchObject({ status: 503, body: { reason: 'block list not yet rebuilt from Kafka' } });
    while (r.status !== 200 && Date.now() < t0 + deadlineMs + 30_000) {
      await new Promise((res) => setTimeout(res, 100));
      r = await readyz(h);
    }
    expect(r.status).toBe(200);
    expect(Date.now()).toBeGreaterThanOrEqual(t0 + deadlineMs);
  });
});

describe('/readyz without Kafka', () => {
  it('is ready with a policy and not ready while shutting down', async () => {
    const h = await startHarness(POLICY);
    expect((await readyz(h)).status).toBe(200);
    const closing = h.sidecar.close();
    const r = await readyz(h).catch(() => ({ status: 503, body: {} }));
    expect(r.status).toBe(503);
    await closing;
    await h.close();
  });
});
