// OCSF Authentication events on their own topic (PALISADE_KAFKA_AUTHENTICATIONS), real broker: a
// real sidecar with mTLS and a real JWT issuer, its decision sink on Kafka, the sink in its own
// thread as the sidecar runs it by default. Every request whose authentication ran gives one event
// on the authentications topic (successes and failures), keyed like its decision, valid against
// our schema and the official OCSF 1.8.0 definition; a request that never reached authn gives
// none; the decisions topic still has one event per request. Off by default: no topic, no events.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Settings } from '../../../../src/config/settings.ts';
import type { OcsfAuthentication } from '../../../../src/decision/ocsf/authentication.ts';
import { validateOcsf } from '../../../../src/decision/ocsf/validate.ts';
import { createKafkaSink } from '../../../../src/decision/sinks/kafka/index.ts';
import { createWorkerSink, type WorkerSink } from '../../../../src/decision/sinks/worker/sink.ts';
import { createLogger } from '../../../../src/log/logger.ts';
import { send, startHarness, until, type Harness } from '../../../support/harness.ts';
import { sidecarProcessBed } from '../../../support/sidecar-process.ts';
import { startIssuer, type Issuer } from '../../ocsf/issuer.ts';
import { checkEvent, loadOcsf } from '../../ocsf/ocsf-source.ts';
import { deleteTopics, readTopic, sinkSettings, testKafka, topicCount, uniqueTopic } from './support.ts';

const policy = (jwksUri: string) => `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: auth-topic, version: "1" }
spec:
  authentication:
    mtls: { trustDomains: [test.local] }
    jwt:
      issuers:
        - { issuer: "https://idp.test/", jwksUri: "${jwksUri}", audiences: [orders] }
    requirements:
      - { id: jwt, paths: ["/jwt/**"], require: { allOf: [mtls, jwt] } }
    defaultRequire: mtls
  authorization:
    rules:
      - { id: all, paths: ["/**"], authenticated: true }
`;

describe('authentication events on their own topic (real broker)', () => {
  let h: Harness;
  let issuer: Issuer;
  let sink: WorkerSink;
  let s: Settings;
  let token = '';

  beforeAll(async () => {
    issuer = await startIssuer();
    s = sinkSettings({ PALISADE_KAFKA_LINGER_MS: '10', PALISADE_KAFKA_AUTHENTICATIONS: 'true', PALISADE_KAFKA_TOPIC_AUTHENTICATIONS: uniqueTopic('authentications') });
    sink = await createWorkerSink({ spec: { kind: 'kafka', settings: s }, logger: createLogger({ level: 'silent' }) });
    h = await startHarness(policy(issuer.jwksUri), { sink });
  });
  afterAll(async () => {
    await h?.close();
    await issuer?.close();
    await deleteTopics([s.kafkaTopicDecisions, s.kafkaTopicBlocklist, s.kafkaTopicAlerts, s.kafkaTopicAuthentications]);
  });

  it('one valid Authentication event per request whose authentication ran, none for the others', { timeout: 120_000 }, async () => {
    const inside = await h.client('spiffe://test.local/ns/shop/sa/web');
    const outside = await h.client('spiffe://elsewhere.example/ns/x/sa/y');
    token = await issuer.sign({ sub: 'alice', jti: 'jti-7' }, Math.floor(Date.now() / 1000) + 600);
    expect((await send(inside, `${h.base}/orders/1`)).status).toBe(200);
    expect((await send(outside, `${h.base}/orders/1`)).status).toBe(403);
    expect((await send(inside, `${h.base}/jwt/me`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await send(inside, `${h.base}/jwt/me`, { headers: { authorization: 'Bearer not.a.token' } })).status).toBe(401);
    expect((await send(inside, `${h.base}/a/%2F/b`)).status).toBe(400); // refused before authn
    await until(() => h.decisions.length >= 5, 10_000);
    await sink.flush();

    const decisions = await readTopic(s.kafkaTopicDecisions, 5);
    expect(decisions).toHaveLength(5);
    const got = await readTopic(s.kafkaTopicAuthentications, 4);
    expect(got).toHaveLength(4);
    const ocsf = loadOcsf();
    const events = got.map((m) => JSON.parse(m.value) as OcsfAuthentication);
    for (const e of events) {
      const j = e as unknown as Record<string, unknown>;
      expect(validateOcsf('authentication', j).errors).toEqual([]);
      expect(checkEvent(ocsf, 'authentication', j)).toEqual([]);
      // Never the token (its signature) on the topic.
      expect(JSON.stringify(j)).not.toContain(token.split('.')[2]);
    }
    expect(events.map((e) => `${e.status}:${e.status_code ?? e.metadata.event_code}`).sort()).toEqual(['Failure:AUTHN_PEER_NOT_ALLOWED', 'Failure:AUTHN_TOKEN_MALFORMED', 'Success:AUTHENTICATED', 'Success:AUTHENTICATED'].sort());
    // Each links to its decision (same request id) and is keyed like it (by client).
    const byRequest = new Map(h.decisions.map((d) => [d.requestId, d]));
    for (const [i, e] of events.entries()) {
      const d = byRequest.get(e.metadata.correlation_uid as string);
      expect(d, 'the decision of this event').toBeDefined();
      expect(e.unmapped.palisade.decision_uid).toBe(d!.id);
      const decisionMessage = decisions.find((m) => (JSON.parse(m.value) as { metadata: { uid: string } }).metadata.uid === d!.id);
      expect(got[i]!.key).toBe(decisionMessage?.key);
    }
    expect(events.find((e) => e.user.name === 'alice')).toMatchObject({ auth_protocol: 'OAUTH 2.0', session: { uid: 'jti-7' } });
    expect(sink.stats()).toMatchObject({ dropped: 0 });
    // Their own accounting, beside the decisions': every event delivered, none dropped.
    await until(() => sink.stats().streams?.['authentications']?.delivered === 4, 10_000);
    expect(sink.stats().streams?.['authentications']).toMatchObject({ accepted: 4, delivered: 4, dropped: 0 });
  });
});

describe('the sidecar process with authentication events on', () => {
  const bed = sidecarProcessBed(policy('https://127.0.0.1:1/jwks'));
  it('publishes them and counts them as the sink "kafka-authentications" in /metrics', { timeout: 120_000 }, async () => {
    const s = sinkSettings();
    const env = {
      ...bed.env(),
      PALISADE_LOG_LEVEL: 'info',
      PALISADE_KAFKA_BROKERS: s.kafkaBrokers,
      PALISADE_KAFKA_TOPIC_DECISIONS: s.kafkaTopicDecisions,
      PALISADE_KAFKA_TOPIC_BLOCKLIST: s.kafkaTopicBlocklist,
      PALISADE_KAFKA_TOPIC_ALERTS: s.kafkaTopicAlerts,
      PALISADE_KAFKA_TOPIC_PARTITIONS: '1',
      PALISADE_KAFKA_TOPIC_REPLICATION: '1',
      PALISADE_KAFKA_LINGER_MS: '10',
      PALISADE_KAFKA_AUTHENTICATIONS: 'true',
      PALISADE_KAFKA_TOPIC_AUTHENTICATIONS: uniqueTopic('authentications-process'),
    };
    const p = await bed.start(env);
    try {
      const adminPort = (JSON.parse(p.log.find((l) => l.includes('"sidecar listening"'))!) as { adminPort: number }).adminPort;
      const { Agent } = await import('undici');
      const pem = await bed.pki.client('spiffe://test.local/ns/shop/sa/web');
      const agent = new Agent({ connect: { ca: bed.pki.ca.cert, cert: pem.cert, key: pem.key, servername: 'localhost' } });
      for (let i = 0; i < 3; i++) expect((await send(agent, `${p.base}/orders/${i}`)).status).toBe(200);
      await agent.close();
      // The sidecar just created the topic: a broker may answer "does not host this topic-partition"
      // for a moment, so count its messages (retrying) before reading it.
      for (const end = Date.now() + 20_000; Date.now() < end; await new Promise((r) => setTimeout(r, 200))) {
        if ((await topicCount(env.PALISADE_KAFKA_TOPIC_AUTHENTICATIONS).catch(() => 0)) >= 3) break;
      }
      expect(await readTopic(env.PALISADE_KAFKA_TOPIC_AUTHENTICATIONS, 3)).toHaveLength(3);
      const metric = /^palisade_decision_events_published_total\{sink="kafka-authentications"\} (\d+)/m;
      let text = '';
      // Scraped until the events' acknowledgements are counted (the thread reports every 100 ms).
      for (const end = Date.now() + 15_000; Date.now() < end; await new Promise((r) => setTimeout(r, 100))) {
        text = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
        if (metric.exec(text)?.[1] === '3') break;
      }
      expect(metric.exec(text)?.[1]).toBe('3');
      expect(text).toMatch(/^palisade_decision_events_dropped_total\{sink="kafka-authentications"\} 0$/m);
      expect(text).toMatch(/^palisade_decision_events_published_total\{sink="kafka"\} 3$/m);
    } finally {
      p.child.kill('SIGTERM');
      await p.exited;
      await deleteTopics([env.PALISADE_KAFKA_TOPIC_DECISIONS, env.PALISADE_KAFKA_TOPIC_BLOCKLIST, env.PALISADE_KAFKA_TOPIC_ALERTS, env.PALISADE_KAFKA_TOPIC_AUTHENTICATIONS]);
    }
  });
});

describe('authentication events off (the default)', () => {
  it('publishes none and creates no topic', { timeout: 60_000 }, async () => {
    const topic = uniqueTopic('authentications-off');
    const s = sinkSettings({ PALISADE_KAFKA_LINGER_MS: '10', PALISADE_KAFKA_TOPIC_AUTHENTICATIONS: topic });
    expect(s.kafkaAuthentications).toBe(false);
    const sink = await createKafkaSink(s, createLogger({ level: 'silent' }));
    const h = await startHarness(policy('https://127.0.0.1:1/jwks'), { sink });
    try {
      const inside = await h.client('spiffe://test.local/ns/shop/sa/web');
      expect((await send(inside, `${h.base}/orders/1`)).status).toBe(200);
      await until(() => h.decisions.length >= 1, 10_000);
      await sink.flush();
      expect(await readTopic(s.kafkaTopicDecisions, 1)).toHaveLength(1);
      const admin = testKafka().admin();
      await admin.connect();
      try {
        expect(await admin.listTopics()).not.toContain(topic);
      } finally {
        await admin.disconnect();
      }
    } finally {
      await h.close();
      await deleteTopics([s.kafkaTopicDecisions, s.kafkaTopicBlocklist, s.kafkaTopicAlerts]);
    }
  });
});
