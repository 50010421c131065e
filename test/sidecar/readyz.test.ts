/**
 * /readyz: ready only with a policy, not while shutting down, and (with Kafka)
 * not before the block list has been rebuilt from its compacted topic.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
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
  let h: Harness;
  const brokers = process.env['PALISADE_KAFKA_BROKERS'] ?? '127.0.0.1:19092';
  beforeAll(async () => {
    const prefix = `ready-${randomUUID().slice(0, 8)}`;
    h = await startHarness(POLICY, {
      env: {
        PALISADE_KAFKA_BROKERS: brokers,
        PALISADE_KAFKA_TOPIC_DECISIONS: `${prefix}.decisions`,
        PALISADE_KAFKA_TOPIC_BLOCKLIST: `${prefix}.blocklist`,
        PALISADE_KAFKA_TOPIC_ALERTS: `${prefix}.alerts`,
      },
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('turns ready once the block list is rebuilt, and names the policy', async () => {
    const first = await readyz(h);
    if (first.status === 503) expect(first.body['reason']).toBe('block list not yet rebuilt from Kafka');
    let r = first;
    const end = Date.now() + 30_000;
    while (r.status !== 200 && Date.now() < end) {
      await new Promise((res) => setTimeout(res, 100));
      r = await readyz(h);
    }
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'ready', policy: { name: 'ready' } });
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
