/**
 * The observability scenario: a real sidecar (real mTLS listener, real upstream, real JWKS and
 * introspection servers, Kafka decision sink with a disk spool, block-list feed) and the real
 * detector (`palisade detector`, its own process) on the test broker, both scraped every second
 * by a real Prometheus loaded with the production alert rules; and a traffic generator that
 * produces allows, each kind of deny of the pipeline, audit-mode would-denies, a manual block, a
 * flood the detector blocks, upstream failures and refused TLS handshakes. Used by test/dashboards/prometheus.test.ts and by scripts/render-dashboards.ts
 * (the README pictures).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { connect } from 'node:tls';
import { Agent, request } from 'undici';
import { blockListStore } from '../../../src/blocklist/store.ts';
import { loadSettings } from '../../../src/config/settings.ts';
import { createLogger } from '../../../src/log/logger.ts';
import { composeSidecar, createServices } from '../../../src/sidecar/compose.ts';
import type { Sidecar } from '../../../src/sidecar/server.ts';
import { createDevCa, type Pem } from '../../../src/tls/dev-ca.ts';
import type { Feature } from '../../../dashboards/lib/spec.ts';
import { RULES_FILE } from '../../../dashboards/generate.ts';
import { createPki, loopbackSidecarEnv, send, startUpstream, type Pki, type Upstream } from '../../support/harness.ts';
import { startIntrospectionServer, type IntrospectionServer } from '../../authn/support/introspection-server.ts';
import { startJwksServer, type JwksServer } from '../../authn/support/jwks-server.ts';
import { makeKey, signToken, type TestKey } from '../../authn/support/keys.ts';
import { createKafkaClient } from '../../../src/kafka/client.ts';
import { freePort, startPrometheus, type Prometheus } from './prometheus.ts';

export const SIDECAR_JOB = 'palisade-sidecar';
export const DETECTOR_JOB = 'palisade-detector';
const ROOT = resolve(import.meta.dirname, '../../..');
/** The test broker (deploy/kafka/broker.sh, started by scripts/test.sh). */
export const BROKERS = process.env['PALISADE_KAFKA_BROKERS'] ?? '127.0.0.1:19092';
const FLOODER = 'spiffe://test.local/ns/evil/sa/flooder';
const ISS = 'https://idp.test/';
const AUD = 'orders-api';
const SECRET_ENV = 'PALISADE_SCENARIO_INTROSPECTION_SECRET';
export const READER = 'spiffe://test.local/ns/shop/sa/reader';
const STRANGER = 'spiffe://test.local/ns/other/sa/stranger';
const SUSPECT = 'spiffe://test.local/ns/audit/sa/suspect';
const BOT = 'spiffe://test.local/ns/evil/sa/bot';

export function scenarioPolicy(version: string, jwksUrl: string, introUrl: string): string {
  return `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: prometheus-check, version: "${version}" }
spec:
  authentication:
    jwt:
      tokenSource: { from: bearer }
      issuers:
        - { issuer: "${ISS}", jwksUri: "${jwksUrl}", audiences: [${AUD}] }
    introspection:
      endpoint: ${introUrl}
      clientId: palisade
      clientSecret: { env: ${SECRET_ENV} }
    requirements:
      - { id: api, paths: [/api/**], require: { anyOf: [jwt, introspection] } }
    defaultRequire: mtls
  rateLimits:
    rules:
      - { id: search-per-client, key: [spiffeId], rate: 1, per: minute, burst: 3, paths: [/search] }
  blocklist:
    entries:
      - id: watch-suspect
        spiffeId: ${SUSPECT}
        reason: under watch
        audit: true
  authorization:
    roles:
      - name: reader
        subjects:
          - spiffeId: ${READER}
          - spiffeId: spiffe://test.local/ns/shop/*
          - spiffeId: ${SUSPECT}
          - spiffeId: ${BOT}
          - spiffeId: ${FLOODER}
    rules:
      - id: orders-read
        methods: [GET]
        paths: ["/orders/{orderId}"]
        roles: [reader]
      - id: no-exports
        effect: deny
        paths: ["/orders/export"]
      - id: search
        methods: [GET]
        paths: [/search]
        roles: [reader]
      - id: api
        paths: ["/api/**"]
        authenticated: true
`;
}

export interface Scenario {
  readonly sidecar: Sidecar;
  readonly prom: Prometheus;
  /** Admin port of the detector process. */
  readonly detectorAdminPort: number;
  readonly policyFile: string;
  /** What the traffic produced so far, so a check knows which panels must show data. */
  readonly produced: Set<Feature>;
  /** Unix seconds when traffic began. */
  trafficStart: number;
  sent: number;
  allowed: number;
  /** The policy text for a version (the same endpoints); write it to policyFile to reload. */
  policy(version: string): string;
  /** One request through the sidecar as this mTLS identity; returns the status. */
  get(spiffeId: string, path: string, headers?: Record<string, string>): Promise<number>;
  /** One round of every kind of traffic; `scale` multiplies the allowed requests. */
  round(scale?: number): Promise<void>;
  /** Puts an identity on the block list (as the detector feedback or `palisade blocklist add` does) and sends it a few requests. */
  block(): Promise<void>;
  /**
   * A client that warms up at a few requests a second, then floods; resolves when the detector's
   * block reaches the sidecar (a 403 BLOCKED), with the milliseconds from the flood's start.
   */
  flood(): Promise<number>;
  /** Refused mTLS handshakes: no client certificate, a certificate from another CA. */
  tlsFailures(count: number): Promise<void>;
  /** Instant value of a PromQL expression (NaN when empty). */
  value(expr: string): Promise<number>;
  /** Resolves once Prometheus has scraped every request sent so far (and two more scrapes). */
  scraped(): Promise<void>;
  close(): Promise<void>;
}

export async function startScenario(): Promise<Scenario> {
  const key: TestKey = await makeKey('RS256');
  const jwks: JwksServer = await startJwksServer([key.jwk]);
  const intro: IntrospectionServer = await startIntrospectionServer();
  process.env[SECRET_ENV] = intro.clientSecret;
  intro.tokens.set('opaque-token-1', { sub: 'svc-batch', client_id: 'batch', scope: 'orders:read', exp: Math.floor(Date.now() / 1000) + 3600 });
  const pki: Pki = await createPki();
  const upstream: Upstream = await startUpstream();
  upstream.handler = (req, _body, res) => {
    if (req.url === '/orders/boom') {
      res.socket?.destroy(); // a broken upstream: connection closed without a response
      return;
    }
    // A little service time, varying, so latency panels have a shape.
    setTimeout(() => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ok: true, url: req.url }));
    }, Math.random() < 0.9 ? Math.random() * 4 : 10 + Math.random() * 40);
  };
  const policyFile = join(pki.dir, 'policy.yaml');
  const policy = (version: string) => scenarioPolicy(version, jwks.url, intro.url);
  writeFileSync(policyFile, policy('1'));
  // This run's own topics and consumer group on the shared test broker.
  const prefix = `palisade-test-obs-${process.pid}-${randomUUID().slice(0, 8)}`;
  const kafkaEnv = {
    PALISADE_KAFKA_BROKERS: BROKERS,
    PALISADE_KAFKA_TOPIC_DECISIONS: `${prefix}.decisions`,
    PALISADE_KAFKA_TOPIC_BLOCKLIST: `${prefix}.blocklist`,
    PALISADE_KAFKA_TOPIC_ALERTS: `${prefix}.alerts`,
    PALISADE_KAFKA_TOPIC_PARTITIONS: '3',
    PALISADE_KAFKA_TOPIC_REPLICATION: '1',
    PALISADE_KAFKA_LINGER_MS: '20',
  };
  const settings = loadSettings({
    ...kafkaEnv,
    PALISADE_SPOOL_DIR: join(pki.dir, 'spool'),
    PALISADE_POLICY: policyFile,
    ...loopbackSidecarEnv(pki, upstream.url),
    PALISADE_DECISIONS_FILE: join(pki.dir, 'decisions.ndjson'),
  });
  const services = createServices(createLogger({ level: 'silent' }));
  const sidecar = await composeSidecar({ settings, logger: services.logger, services });

  // The detector: `palisade detector`, its own process, on the same topics; a short warm-up so
  // a test minute is enough.
  const detectorConfig = join(pki.dir, 'detector.json');
  writeFileSync(
    detectorConfig,
    JSON.stringify({
      engine: { warmupEvents: 10, warmupSeconds: 2 },
      population: { epochSeconds: 2, minSamples: 10 },
      // Every anomaly alerts; a burst (the flood) blocks. The scripted test clients fail
      // authentication and hit denies on purpose; they should be seen, not blocked.
      feedback: {
        low: { action: 'alert' },
        medium: { action: 'alert' },
        high: { action: 'alert' },
        critical: { action: 'alert' },
        detections: { 'rate.burst': { medium: { action: 'block', durationSeconds: 60 }, high: { action: 'block', durationSeconds: 60 }, critical: { action: 'block', durationSeconds: 60 } } },
      },
      kafka: { groupId: `${prefix}.detector`, stateTopic: `${prefix}.state`, checkpointIntervalMs: 1000, expirySweepMs: 500 },
    }),
  );
  const detectorAdminPort = await freePort();
  const detectorLog: string[] = [];
  const detector: ChildProcess = spawn(process.execPath, [join(ROOT, 'src/cli/main.ts'), 'detector'], {
    env: { ...process.env, ...kafkaEnv, PALISADE_DETECTOR_CONFIG: detectorConfig, PALISADE_DETECTOR_ADMIN_HOST: '127.0.0.1', PALISADE_DETECTOR_ADMIN_PORT: String(detectorAdminPort), PALISADE_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  detector.stdout?.on('data', (b: Buffer) => detectorLog.push(b.toString()));
  detector.stderr?.on('data', (b: Buffer) => detectorLog.push(b.toString()));
  let detectorExited = false;
  detector.once('exit', () => {
    detectorExited = true;
  });
  const readyDeadline = Date.now() + 60_000;
  for (;;) {
    if (detectorExited) throw new Error(`palisade detector exited:\n${detectorLog.join('')}`);
    const ok = await fetch(`http://127.0.0.1:${detectorAdminPort}/readyz`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > readyDeadline) throw new Error(`palisade detector not ready in 60 s:\n${detectorLog.join('')}`);
    await new Promise((r) => setTimeout(r, 200));
  }

  const prom = await startPrometheus({
    jobs: [
      { job: SIDECAR_JOB, targets: [`127.0.0.1:${sidecar.adminPort}`] },
      { job: DETECTOR_JOB, targets: [`127.0.0.1:${detectorAdminPort}`] },
    ],
    ruleFiles: [RULES_FILE],
  });

  const agents = new Map<string, Agent>();
  const agent = async (spiffeId: string): Promise<Agent> => {
    let a = agents.get(spiffeId);
    if (!a) {
      const pem = await pki.client(spiffeId);
      a = new Agent({ connect: { ca: pki.ca.cert, cert: pem.cert, key: pem.key, servername: 'localhost' } });
      agents.set(spiffeId, a);
    }
    return a;
  };
  const jwt = await signToken(key, { iss: ISS, aud: AUD, sub: 'alice', scope: 'orders:read' }, { expiresIn: 3600 });
  const expired = await signToken(key, { iss: ISS, aud: AUD, sub: 'alice' }, { expiresIn: -3600, issuedAt: Math.floor(Date.now() / 1000) - 7200 });
  let rogue: Pem | null = null;
  let orderId = 0;
  let blocked = false;

  const sc: Scenario = {
    sidecar,
    prom,
    policyFile,
    detectorAdminPort,
    produced: new Set<Feature>(['process', 'sink', 'spool', 'policy', 'detector']),
    trafficStart: 0,
    sent: 0,
    allowed: 0,
    policy,
    async get(spiffeId, path, headers = {}) {
      const r = await send(await agent(spiffeId), `https://127.0.0.1:${sidecar.tlsPort}${path}`, { headers });
      sc.sent++;
      if (r.status < 400) sc.allowed++;
      return r.status;
    },
    async round(scale = 1) {
      if (sc.trafficStart === 0) sc.trafficStart = Math.floor(Date.now() / 1000);
      const expectStatus = async (want: number, p: Promise<number>) => {
        const got = await p;
        if (got !== want) throw new Error(`expected ${want}, got ${got}`);
      };
      // The bulk of the allowed traffic comes from a pool of clients, each at a rate the detector
      // takes as normal (the flood below is what it must catch).
      for (let i = 0; i < 10 * scale; i++) await expectStatus(200, sc.get(`spiffe://test.local/ns/shop/sa/web-${i % 6}`, `/orders/${orderId++}`));
      await expectStatus(403, sc.get(READER, '/orders/export')); // explicit deny rule
      await expectStatus(403, sc.get(STRANGER, '/orders/1')); // no role
      await expectStatus(403, sc.get(READER, '/admin/users')); // no matching rule
      await expectStatus(400, sc.get(READER, '/orders/a%2Fb')); // encoded slash: request layer
      await expectStatus(200, sc.get(SUSPECT, '/orders/7')); // audit-mode block entry: would deny
      await expectStatus(502, sc.get(READER, '/orders/boom')); // upstream closed the connection
      for (const f of ['traffic', 'allow', 'deny', 'authz-deny', 'upstream', 'upstream-error', 'audit'] as const) sc.produced.add(f);
      // Authentication: JWT (one JWKS fetch, then cache hits), introspection, failures.
      for (let i = 0; i < scale; i++) {
        await expectStatus(200, sc.get(READER, '/api/orders', { authorization: `Bearer ${jwt}` }));
        await expectStatus(200, sc.get(READER, '/api/orders', { authorization: 'Bearer opaque-token-1' }));
      }
      await expectStatus(401, sc.get(READER, '/api/orders')); // no credential
      await expectStatus(401, sc.get(READER, '/api/orders', { authorization: `Bearer ${expired}` }));
      await expectStatus(401, sc.get(READER, '/api/orders', { authorization: 'Bearer revoked-or-unknown' })); // inactive
      for (const f of ['authn-deny', 'jwt', 'introspection'] as const) sc.produced.add(f);
      // Rate limit: 3 a minute per client, then 429.
      for (let i = 0; i < 4; i++) await sc.get(READER, '/search');
      sc.produced.add('ratelimit');
      // A blocked client keeps trying.
      if (blocked) for (let i = 0; i < 2; i++) await expectStatus(403, sc.get(BOT, `/orders/${i}`));
    },
    async block() {
      blockListStore(services).add({ kind: 'spiffeId', value: BOT, reason: 'abuse', source: 'manual', ttlMs: 600_000 });
      blocked = true;
      for (let i = 0; i < 5; i++) {
        const s = await sc.get(BOT, `/orders/${i}`);
        if (s !== 403) throw new Error(`blocked client got ${s}`);
      }
      sc.produced.add('blocklist').add('blocklist-entries');
    },
    async flood() {
      const a = await agent(FLOODER);
      const url = `https://127.0.0.1:${sidecar.tlsPort}/orders/`;
      const one = async (): Promise<{ status: number; code: string | null }> => {
        const r = await request(`${url}${orderId++}`, { dispatcher: a });
        const text = await r.body.text();
        sc.sent++;
        if (r.statusCode < 400) sc.allowed++;
        return { status: r.statusCode, code: r.statusCode === 403 ? ((JSON.parse(text) as { code?: string }).code ?? null) : null };
      };
      // Warm-up: a baseline of a few requests a second.
      for (let i = 0; i < 16; i++) {
        await one();
        await new Promise((r) => setTimeout(r, 250));
      }
      const t0 = Date.now();
      let blockedAt = 0;
      const deadline = t0 + 30_000;
      await Promise.all(
        Array.from({ length: 24 }, async () => {
          while (blockedAt === 0 && Date.now() < deadline) {
            const r = await one();
            if (r.code === 'BLOCKED') blockedAt ||= Date.now();
          }
        }),
      );
      if (blockedAt === 0) throw new Error(`the detector did not block the flood in 30 s:\n${detectorLog.join('')}`);
      for (const f of ['detector-anomaly', 'detector-block', 'blocklist', 'blocklist-entries'] as const) sc.produced.add(f);
      return blockedAt - t0;
    },
    async tlsFailures(count) {
      rogue ??= await (await createDevCa('Rogue CA')).issue({ commonName: 'rogue', spiffeId: 'spiffe://rogue.local/x', usage: 'client' });
      const handshake = (o: { cert?: string; key?: string }) =>
        new Promise<void>((resolve) => {
          const s = connect({ host: '127.0.0.1', port: sidecar.tlsPort, ca: pki.ca.cert, servername: 'localhost', ...o }, () => {
            // TLS 1.3: the server's verdict on the client certificate arrives after our side completes.
            s.write('GET /orders/1 HTTP/1.1\r\nHost: localhost\r\n\r\n');
          });
          s.on('error', () => resolve());
          s.on('close', () => resolve());
        });
      for (let i = 0; i < count; i++) {
        await handshake({});
        await handshake({ cert: rogue.cert, key: rogue.key });
      }
      sc.produced.add('tls-failure');
    },
    async value(expr) {
      const r = await prom.query(expr);
      const v = r.data?.result[0]?.value?.[1];
      return v === undefined ? Number.NaN : Number(v);
    },
    async scraped() {
      const total = `sum(palisade_requests_total{job="${SIDECAR_JOB}"})`;
      const deadline = Date.now() + 20_000;
      while ((await sc.value(total)) < sc.sent) {
        if (Date.now() > deadline) throw new Error(`Prometheus saw ${await sc.value(total)} of ${sc.sent} requests`);
        await new Promise((r) => setTimeout(r, 200));
      }
      await new Promise((r) => setTimeout(r, 2500));
    },
    async close() {
      for (const a of agents.values()) await a.close();
      await prom.close();
      if (!detectorExited) {
        const gone = new Promise<void>((r) => detector.once('exit', () => r()));
        detector.kill('SIGTERM');
        const t = setTimeout(() => detector.kill('SIGKILL'), 10_000);
        await gone;
        clearTimeout(t);
      }
      await sidecar.close();
      // Drop this run's topics and group from the shared broker.
      const admin = createKafkaClient(settings, services.logger).admin();
      await admin.connect();
      try {
        const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
        if (topics.length > 0) await admin.deleteTopics({ topics }).catch(() => undefined);
        await admin.deleteGroups([`${prefix}.detector`]).catch(() => undefined);
      } finally {
        await admin.disconnect();
      }
      await upstream.close();
      await jwks.close();
      await intro.close();
      delete process.env[SECRET_ENV];
      rmSync(pki.dir, { recursive: true, force: true });
    },
  };
  // Prometheus scrapes the sidecar once before any traffic, so rates start from a zero.
  const deadline = Date.now() + 20_000;
  while ((await sc.value(`sum(up{job=~"${SIDECAR_JOB}|${DETECTOR_JOB}"})`)) !== 2) {
    if (Date.now() > deadline) throw new Error(`Prometheus never scraped the sidecar: ${JSON.stringify(await prom.targets())}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return sc;
}
