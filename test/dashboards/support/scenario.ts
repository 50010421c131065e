/**
 * The observability scenario: a real sidecar (real mTLS listener, real upstream, real JWKS and
 * introspection servers, NDJSON decision sink) scraped every second by a real Prometheus loaded
 * with the production alert rules, and a traffic generator that produces allows, each kind of
 * deny of the pipeline, audit-mode would-denies, a block, upstream failures and refused TLS
 * handshakes. Used by test/dashboards/prometheus.test.ts and by scripts/render-dashboards.ts
 * (the README pictures).
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { Agent } from 'undici';
import { blockListStore } from '../../../src/blocklist/store.ts';
import { loadSettings } from '../../../src/config/settings.ts';
import { createLogger } from '../../../src/log/logger.ts';
import { composeSidecar, createServices } from '../../../src/sidecar/compose.ts';
import type { Sidecar } from '../../../src/sidecar/server.ts';
import { createDevCa, type Pem } from '../../../src/tls/dev-ca.ts';
import type { Feature } from '../../../dashboards/lib/spec.ts';
import { RULES_FILE } from '../../../dashboards/generate.ts';
import { createPki, send, startUpstream, type Pki, type Upstream } from '../../support/harness.ts';
import { startIntrospectionServer, type IntrospectionServer } from '../../authn/support/introspection-server.ts';
import { startJwksServer, type JwksServer } from '../../authn/support/jwks-server.ts';
import { makeKey, signToken, type TestKey } from '../../authn/support/keys.ts';
import { startPrometheus, type Prometheus } from './prometheus.ts';

export const SIDECAR_JOB = 'palisade-sidecar';
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
          - spiffeId: ${SUSPECT}
          - spiffeId: ${BOT}
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
  const settings = loadSettings({
    PALISADE_POLICY: policyFile,
    PALISADE_LISTEN_HOST: '127.0.0.1',
    PALISADE_LISTEN_PORT: '0',
    PALISADE_ADMIN_HOST: '127.0.0.1',
    PALISADE_ADMIN_PORT: '0',
    PALISADE_UPSTREAM: upstream.url,
    PALISADE_TLS_CERT: pki.server.cert,
    PALISADE_TLS_KEY: pki.server.key,
    PALISADE_TLS_CA: pki.caFile,
    PALISADE_DECISIONS_FILE: join(pki.dir, 'decisions.ndjson'),
  });
  const services = createServices(createLogger({ level: 'silent' }));
  const sidecar = await composeSidecar({ settings, logger: services.logger, services });
  const prom = await startPrometheus({ jobs: [{ job: SIDECAR_JOB, targets: [`127.0.0.1:${sidecar.adminPort}`] }], ruleFiles: [RULES_FILE] });

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
    produced: new Set<Feature>(['process', 'sink', 'policy']),
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
      for (let i = 0; i < 10 * scale; i++) await expectStatus(200, sc.get(READER, `/orders/${orderId++}`));
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
      await sidecar.close();
      await upstream.close();
      await jwks.close();
      await intro.close();
      delete process.env[SECRET_ENV];
      rmSync(pki.dir, { recursive: true, force: true });
    },
  };
  // Prometheus scrapes the sidecar once before any traffic, so rates start from a zero.
  const deadline = Date.now() + 20_000;
  while ((await sc.value(`up{job="${SIDECAR_JOB}"}`)) !== 1) {
    if (Date.now() > deadline) throw new Error(`Prometheus never scraped the sidecar: ${JSON.stringify(await prom.targets())}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return sc;
}
