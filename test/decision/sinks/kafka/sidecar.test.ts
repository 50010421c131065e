// Through the real sidecar (mTLS clients, upstream) into the real broker: every
// request yields exactly one event on the topic, read back with kafkajs and with
// kcat as an outside consumer, each valid against the OCSF HTTP Activity schema.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Settings } from '../../../../src/config/settings.ts';
import { validateOcsf } from '../../../../src/decision/ocsf/validate.ts';
import { partitionKey } from '../../../../src/decision/sinks/kafka/key.ts';
import { createKafkaSink, type KafkaSink } from '../../../../src/decision/sinks/kafka/index.ts';
import { createLogger } from '../../../../src/log/logger.ts';
import { send, startHarness, until, type Harness } from '../../../support/harness.ts';
import { deleteTopics, delivered, kcatRead, readTopic, sinkSettings } from './support.ts';

const POLICY = `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: kafka-e2e, version: "7" }
spec:
  authorization:
    rules:
      - id: health
        methods: [GET]
        paths: [/healthz]
        public: true
      - id: items
        methods: [GET, POST]
        paths: ["/items/{id}"]
        public: true
`;

describe('sidecar -> Kafka decision stream (real broker)', () => {
  let h: Harness;
  let sink: KafkaSink;
  let s: Settings;

  beforeAll(async () => {
    s = sinkSettings({ PALISADE_KAFKA_LINGER_MS: '10' });
    sink = await createKafkaSink(s, createLogger({ level: 'silent' }));
    h = await startHarness(POLICY, { sink });
  });
  afterAll(async () => {
    await h?.close();
    await deleteTopics([s.kafkaTopicDecisions, s.kafkaTopicBlocklist, s.kafkaTopicAlerts]);
  });

  it('publishes exactly one schema-valid event per request, read back by kafkajs and kcat', { timeout: 120_000 }, async () => {
    const clients = await Promise.all(['spiffe://test.local/ns/a/sa/one', 'spiffe://test.local/ns/a/sa/two', null].map((id) => h.client(id)));
    const paths = ['/healthz', '/items/1', '/admin', '/items/2?secret=x', '/%2e%2e/etc/passwd'];
    let sent = 0;
    const statuses: number[] = [];
    for (let round = 0; round < 20; round++) {
      await Promise.all(
        clients.map(async (agent, i) => {
          const res = await send(agent, `${h.base}${paths[(round + i) % paths.length]}`, round % 4 === 0 ? { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } } : {});
          statuses.push(res.status);
          sent++;
        }),
      );
    }
    expect(new Set(statuses).size).toBeGreaterThan(1); // allowed and denied requests both
    await until(() => h.decisions.length >= sent, 10_000);
    await delivered(sink, sent);
    expect(sink.stats()).toMatchObject({ accepted: sent, delivered: sent, dropped: 0, buffered: 0 });

    const records = new Map(h.decisions.map((r) => [r.id, r]));
    expect(records.size).toBe(sent);

    // kafkajs
    const viaKafkajs = await readTopic(s.kafkaTopicDecisions, sent);
    expect(viaKafkajs).toHaveLength(sent);
    const uids = new Set<string>();
    for (const m of viaKafkajs) {
      const event = JSON.parse(m.value) as { metadata: { uid: string } };
      const check = validateOcsf('http-activity', event);
      expect(check.errors).toEqual([]);
      const record = records.get(event.metadata.uid);
      expect(record, `event ${event.metadata.uid} is not one of the requests`).toBeDefined();
      expect(m.headers['event-id']).toBe(event.metadata.uid);
      expect(m.key).toBe(partitionKey(record!));
      expect(m.value).not.toContain('secret=x'); // the query string is never recorded
      uids.add(event.metadata.uid);
    }
    expect(uids.size).toBe(sent);

    // kcat (librdkafka), an outside consumer
    const viaKcat = await kcatRead(s.kafkaTopicDecisions);
    expect(viaKcat).toHaveLength(sent);
    const kcatUids = new Set<string>();
    for (const m of viaKcat) {
      const event = JSON.parse(m.payload ?? '') as { metadata: { uid: string } };
      expect(validateOcsf('http-activity', event).errors).toEqual([]);
      expect(m.headers).toEqual(['event-id', event.metadata.uid, 'content-type', 'application/json']);
      kcatUids.add(event.metadata.uid);
    }
    expect(kcatUids).toEqual(new Set(records.keys()));
  });
});
