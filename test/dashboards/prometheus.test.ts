/**
 * The dashboards and alert rules against a real Prometheus (Debian's package): a real sidecar
 * (real mTLS listener, real upstream, NDJSON decision sink) serves /metrics on its admin listener;
 * Prometheus scrapes it every second while generated traffic produces allows, each kind of deny
 * the current pipeline has, a block, an upstream failure, TLS handshake failures and a refused
 * policy. Then every query of every panel of every dashboard runs through Prometheus's HTTP API:
 * each must parse and evaluate, and each panel whose data the traffic produced must return a
 * series with a value. Finally the policy-reload-refused alert fires in Prometheus (production
 * rules file, 1 s evaluation) and resolves when a valid policy is back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { Agent } from 'undici';
import { blockListStore } from '../../src/blocklist/store.ts';
import { loadSettings } from '../../src/config/settings.ts';
import { createLogger } from '../../src/log/logger.ts';
import { composeSidecar, createServices } from '../../src/sidecar/compose.ts';
import type { Sidecar } from '../../src/sidecar/server.ts';
import { createDevCa } from '../../src/tls/dev-ca.ts';
import { DASHBOARDS } from '../../dashboards/index.ts';
import type { Feature } from '../../dashboards/lib/spec.ts';
import { RULES_FILE } from '../../dashboards/generate.ts';
import { createPki, send, startUpstream, until, type Pki, type Upstream } from '../support/harness.ts';
import { startIntrospectionServer, type IntrospectionServer } from '../authn/support/introspection-server.ts';
import { startJwksServer, type JwksServer } from '../authn/support/jwks-server.ts';
import { makeKey, signToken, type TestKey } from '../authn/support/keys.ts';
import { expandGrafanaVariables, grafanaAllValue, startPrometheus, type Prometheus, type PromResult } from './support/prometheus.ts';

const ISS = 'https://idp.test/';
const AUD = 'orders-api';
const SECRET_ENV = 'PALISADE_TEST_PROMETHEUS_INTROSPECTION_SECRET';
let jwks: JwksServer;
let intro: IntrospectionServer;
let key: TestKey;

const POLICY = (version: string) => `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: prometheus-check, version: "${version}" }
spec:
  authentication:
    jwt:
      tokenSource: { from: bearer }
      issuers:
        - { issuer: "${ISS}", jwksUri: "${jwks.url}", audiences: [${AUD}] }
    introspection:
      endpoint: ${intro.url}
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
        spiffeId: spiffe://test.local/ns/audit/sa/suspect
        reason: under watch
        audit: true
  authorization:
    roles:
      - name: reader
        subjects:
          - spiffeId: spiffe://test.local/ns/shop/sa/reader
          - spiffeId: spiffe://test.local/ns/audit/sa/suspect
          - spiffeId: spiffe://test.local/ns/evil/sa/bot
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

const SIDECAR_JOB = 'palisade-sidecar';

let pki: Pki;
let upstream: Upstream;
let sidecar: Sidecar;
let prom: Prometheus;
let policyFile = '';
const agents = new Map<string, Agent>();
const services = createServices(createLogger({ level: 'silent' }));
let trafficStart = 0;
let sent = 0;
let allowed = 0;
/** What the generated traffic produced, so the check knows which panels must show data. */
const produced = new Set<Feature>(['process', 'sink', 'policy']);

async function agent(spiffeId: string): Promise<Agent> {
  let a = agents.get(spiffeId);
  if (!a) {
    const pem = await pki.client(spiffeId);
    a = new Agent({ connect: { ca: pki.ca.cert, cert: pem.cert, key: pem.key, servername: 'localhost' } });
    agents.set(spiffeId, a);
  }
  return a;
}

async function get(spiffeId: string, path: string, headers: Record<string, string> = {}): Promise<number> {
  const r = await send(await agent(spiffeId), `https://127.0.0.1:${sidecar.tlsPort}${path}`, { headers });
  sent++;
  if (r.status < 400) allowed++;
  return r.status;
}

/** A TLS handshake the sidecar must refuse; resolves when the connection is gone. */
function failedHandshake(options: { cert?: string; key?: string }): Promise<void> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port: sidecar.tlsPort, ca: pki.ca.cert, servername: 'localhost', ...options }, () => {
      // TLS 1.3: the server's verdict on the client certificate arrives after our handshake completes.
      s.write('GET /orders/1 HTTP/1.1\r\nHost: localhost\r\n\r\n');
    });
    s.on('error', () => resolve());
    s.on('close', () => resolve());
  });
}

async function promValue(expr: string): Promise<number> {
  const r = await prom.query(expr);
  const v = r.data?.result[0]?.value?.[1];
  return v === undefined ? Number.NaN : Number(v);
}

beforeAll(async () => {
  key = await makeKey('RS256');
  jwks = await startJwksServer([key.jwk]);
  intro = await startIntrospectionServer();
  process.env[SECRET_ENV] = intro.clientSecret;
  intro.tokens.set('opaque-token-1', { sub: 'svc-batch', client_id: 'batch', scope: 'orders:read', exp: Math.floor(Date.now() / 1000) + 600 });
  pki = await createPki();
  upstream = await startUpstream();
  upstream.handler = (req, _body, res) => {
    if (req.url === '/orders/boom') {
      res.socket?.destroy(); // a broken upstream: connection closed without a response
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ ok: true, url: req.url }));
  };
  policyFile = join(pki.dir, 'policy.yaml');
  writeFileSync(policyFile, POLICY('1'));
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
  sidecar = await composeSidecar({ settings, logger: services.logger, services });
  prom = await startPrometheus({ jobs: [{ job: SIDECAR_JOB, targets: [`127.0.0.1:${sidecar.adminPort}`] }], ruleFiles: [RULES_FILE] });
  // Prometheus has scraped the sidecar once before the traffic (so rates have a zero to start from).
  const deadline = Date.now() + 20_000;
  while ((await promValue(`up{job="${SIDECAR_JOB}"}`)) !== 1) {
    if (Date.now() > deadline) throw new Error(`Prometheus never scraped the sidecar: ${JSON.stringify(await prom.targets())}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  trafficStart = Math.floor(Date.now() / 1000);

  const reader = 'spiffe://test.local/ns/shop/sa/reader';
  // Several rounds, so rate() windows hold more than one sample of change.
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 10; i++) expect(await get(reader, `/orders/${round * 10 + i}`)).toBe(200);
    expect(await get(reader, '/orders/export')).toBe(403); // explicit deny rule
    expect(await get('spiffe://test.local/ns/other/sa/stranger', '/orders/1')).toBe(403); // no role
    expect(await get(reader, '/admin/users')).toBe(403); // no matching rule
    expect(await get(reader, '/orders/a%2Fb')).toBe(400); // encoded slash: request layer
    expect(await get('spiffe://test.local/ns/audit/sa/suspect', '/orders/7')).toBe(200); // audit-mode block entry: would deny
    expect(await get(reader, '/orders/boom')).toBe(502); // upstream closed the connection
    await new Promise((r) => setTimeout(r, 1100)); // one scrape per round
  }
  for (const f of ['traffic', 'allow', 'deny', 'authz-deny', 'upstream', 'upstream-error', 'audit'] as const) produced.add(f);

  // Authentication: JWT (a JWKS fetch, then cache hits), introspection, and failures.
  const jwt = await signToken(key, { iss: ISS, aud: AUD, sub: 'alice', scope: 'orders:read' });
  const expired = await signToken(key, { iss: ISS, aud: AUD, sub: 'alice' }, { expiresIn: -3600, issuedAt: Math.floor(Date.now() / 1000) - 7200 });
  for (let i = 0; i < 3; i++) {
    expect(await get(reader, '/api/orders', { authorization: `Bearer ${jwt}` })).toBe(200);
    expect(await get(reader, '/api/orders', { authorization: 'Bearer opaque-token-1' })).toBe(200);
    expect(await get(reader, '/api/orders')).toBe(401); // no credential
    expect(await get(reader, '/api/orders', { authorization: `Bearer ${expired}` })).toBe(401);
    expect(await get(reader, '/api/orders', { authorization: 'Bearer revoked-or-unknown' })).toBe(401); // introspection: inactive
    await new Promise((r) => setTimeout(r, 1100));
  }
  produced.add('authn-deny').add('jwt').add('introspection');

  // Rate limits: a burst of 3, then refusals.
  const searches: number[] = [];
  for (let i = 0; i < 6; i++) searches.push(await get(reader, '/search'));
  expect(searches).toEqual([200, 200, 200, 429, 429, 429]);
  produced.add('ratelimit');

  // A block, as the detector feedback (or `palisade blocklist add`) puts it in the store.
  blockListStore(services).add({ kind: 'spiffeId', value: 'spiffe://test.local/ns/evil/sa/bot', reason: 'abuse', source: 'manual', ttlMs: 600_000 });
  for (let i = 0; i < 5; i++) expect(await get('spiffe://test.local/ns/evil/sa/bot', `/orders/${i}`)).toBe(403);
  produced.add('blocklist').add('blocklist-entries');

  // mTLS refusals: no client certificate, and a certificate from another CA.
  const rogue = await createDevCa('Rogue CA');
  const rogueClient = await rogue.issue({ commonName: 'rogue', spiffeId: 'spiffe://rogue.local/x', usage: 'client' });
  for (let i = 0; i < 3; i++) {
    await failedHandshake({});
    await failedHandshake({ cert: rogueClient.cert, key: rogueClient.key });
  }
  produced.add('tls-failure');

  // Every request has been scraped.
  const total = `sum(palisade_requests_total{job="${SIDECAR_JOB}"})`;
  const deadline2 = Date.now() + 20_000;
  while ((await promValue(total)) < sent) {
    if (Date.now() > deadline2) throw new Error(`Prometheus saw ${await promValue(total)} of ${sent} requests`);
    await new Promise((r) => setTimeout(r, 200));
  }
  // ...and two more scrapes so every counter's last change is inside a rate window.
  await new Promise((r) => setTimeout(r, 2500));
}, 120_000);

afterAll(async () => {
  for (const a of agents.values()) await a.close();
  await prom?.close();
  await sidecar?.close();
  await upstream?.close();
  await jwks?.close();
  await intro?.close();
  delete process.env[SECRET_ENV];
  if (pki) rmSync(pki.dir, { recursive: true, force: true });
});

function finiteValues(r: PromResult): number {
  let n = 0;
  for (const s of r.data?.result ?? []) {
    for (const [, v] of s.values ?? (s.value ? [s.value] : [])) if (Number.isFinite(Number(v))) n++;
  }
  return n;
}

describe('dashboards against a real Prometheus scraping a real sidecar', () => {
  it('scrapes the sidecar', async () => {
    const targets = await prom.targets();
    expect(targets.map((t) => [t.labels['job'], t.health])).toEqual([[SIDECAR_JOB, 'up']]);
    expect(await promValue(`sum(palisade_requests_total{job="${SIDECAR_JOB}", verdict="allow"})`)).toBe(allowed);
  });

  for (const spec of DASHBOARDS) {
    it(`${spec.title}: every panel query parses; every panel with produced data returns series`, async () => {
      const json = JSON.parse(readFileSync(join(import.meta.dirname, '../../dashboards', spec.file), 'utf8')) as {
        panels: { type: string; title: string; targets?: { expr: string; refId: string; instant?: boolean }[] }[];
      };
      const expectOf = new Map(spec.rows.flatMap((r) => r.panels.map((p) => [p.title, p.expect] as const)));
      const end = Math.ceil(Date.now() / 1000);
      const range = `${end - trafficStart + 60}s`;
      // The dashboard's variables as Grafana resolves them with "All" selected.
      const jobs = await prom.labelValues('job', spec.variableMetric);
      const job = grafanaAllValue(jobs);
      const instance = grafanaAllValue(jobs.length ? await prom.labelValues('instance', `${spec.variableMetric}{job=~"${job}"}`) : []);
      const report: string[] = [];
      const failures: string[] = [];
      for (const panel of json.panels.filter((p) => p.type !== 'row')) {
        const feature = expectOf.get(panel.title);
        expect(feature, `panel "${panel.title}" has a spec`).not.toBeUndefined();
        let panelValues = 0;
        for (const t of panel.targets ?? []) {
          const expr = expandGrafanaVariables(t.expr, { rateInterval: '10s', range, job, instance });
          const r = t.instant ? await prom.query(expr, end) : await prom.queryRange(expr, trafficStart - 5, end, 1);
          if (r.status !== 'success') failures.push(`${panel.title} [${t.refId}]: ${r.errorType}: ${r.error}\n    ${expr}`);
          panelValues += finiteValues(r);
        }
        const must = feature !== null && feature !== undefined && produced.has(feature);
        report.push(`${must ? 'must' : 'may '} ${String(panelValues).padStart(5)}  ${panel.title}${feature ? ` (${feature})` : ''}`);
        if (must && panelValues === 0) failures.push(`${panel.title}: no data, but the traffic produced "${feature}"`);
      }
      console.log(`${spec.title}\n  ${report.join('\n  ')}`);
      expect(failures).toEqual([]);
    });
  }

  it('the policy-reload-refused alert fires in Prometheus when a bad policy is written, and resolves when it is fixed', async () => {
    const alertState = async () => (await prom.alerts()).find((a) => a.labels['alertname'] === 'PalisadePolicyReloadRefused');
    expect(await alertState()).toBeUndefined();
    // Second-resolution timestamps: make the refusal's second differ from the initial load's.
    await new Promise((r) => setTimeout(r, 1100));
    writeFileSync(policyFile, POLICY('2').replace('effect: deny', 'effect: maybe'));
    expect(await sidecar.reloadPolicy()).toBeInstanceOf(Error);
    const deadline = Date.now() + 20_000;
    let firing = await alertState();
    while (firing?.state !== 'firing') {
      if (Date.now() > deadline) throw new Error(`alert not firing: ${JSON.stringify(await prom.alerts())}`);
      await new Promise((r) => setTimeout(r, 250));
      firing = await alertState();
    }
    expect(firing.labels).toMatchObject({ job: SIDECAR_JOB, severity: 'warning', component: 'sidecar' });
    expect(firing.annotations['summary']).toContain('Policy refused by 127.0.0.1:');
    // The old policy is still in force meanwhile.
    expect(sidecar.policy()!.version).toBe('1');
    expect(await get('spiffe://test.local/ns/shop/sa/reader', '/orders/export')).toBe(403);

    await new Promise((r) => setTimeout(r, 1100));
    writeFileSync(policyFile, POLICY('3'));
    expect(await sidecar.reloadPolicy()).toBeNull();
    const deadline2 = Date.now() + 20_000;
    while ((await alertState()) !== undefined) {
      if (Date.now() > deadline2) throw new Error(`alert did not resolve: ${JSON.stringify(await prom.alerts())}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(await promValue(`palisade_policy_reloads_total{job="${SIDECAR_JOB}", result="refused"}`)).toBeGreaterThanOrEqual(1);
  });
});
