/**
 * `palisade demo`: the whole system on one machine, nothing else installed.
 * A dev CA and certificates, the sample orders service, the sample policy,
 * the sidecar in front, the detector in-process, then scripted requests with
 * what was allowed and denied and why, and commands to try more.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Agent } from 'undici';
import { loadSettings } from '../config/settings.ts';
import type { DecisionRecord } from '../decision/record.ts';
import { createNdjsonSink } from '../decision/sinks/ndjson.ts';
import { teeSink, type DecisionSink } from '../decision/sink.ts';
import { createLogger } from '../log/logger.ts';
import { composeSidecar, createServices } from '../sidecar/compose.ts';
import type { Sidecar } from '../sidecar/server.ts';
import { createDevCa, writePem, type Pem } from '../tls/dev-ca.ts';
import { createEmbeddedDetector } from '../../detectors/embedded.ts';
import { blockListStore } from '../blocklist/store.ts';
import { startDemoIdp } from './idp.ts';
import { prepareDemoPolicy } from './policy-file.ts';
import { assertPortsFree, policyEditLines } from './cli-output.ts';
import { startOrdersService } from './orders-service.ts';

export interface DemoOptions {
  /** Where certificates, the policy copy and decisions.ndjson go. */
  readonly dir: string;
  readonly port: number;
  readonly adminPort: number;
  readonly servicePort: number;
  /** Exit after the scripted part instead of serving until Ctrl-C (and wait for the demo block to expire). */
  readonly once: boolean;
  /** How long the detector blocks an abusive client, seconds. */
  readonly blockSeconds: number;
  /** Run an edited policy copy left in `dir` by an earlier run, instead of keeping it aside. Default false. */
  readonly keepPolicy?: boolean;
  readonly out: (line: string) => void;
}

export interface DemoHandle {
  readonly sidecar: Sidecar;
  readonly decisions: DecisionRecord[];
  readonly services: import('../pipeline/services.ts').Services;
  close(): Promise<void>;
}

interface Client {
  readonly name: string;
  readonly spiffeId: string | null;
  readonly files: { cert: string; key: string };
  readonly agent: Agent;
}

function memorySinkInto(list: DecisionRecord[]): DecisionSink {
  return {
    write: (r) => void list.push(r),
    flush: async () => undefined,
    close: async () => undefined,
    stats: () => ({ accepted: list.length, delivered: list.length, dropped: 0, buffered: 0 }),
  };
}

export async function runDemo(o: DemoOptions): Promise<DemoHandle> {
  const dir = resolve(o.dir);
  const say = o.out;
  // Before anything starts: a port in use is one line naming it and its flag, not a stack.
  await assertPortsFree([
    { port: o.port, flag: '--port', what: 'the sidecar' },
    { port: o.adminPort, flag: '--admin-port', what: 'the sidecar\'s admin listener' },
    { port: o.servicePort, flag: '--service-port', what: 'the orders service' },
  ]);
  const pki = join(dir, 'pki');
  mkdirSync(pki, { recursive: true });

  say('palisade demo: generating a development CA and certificates…');
  const ca = await createDevCa('Palisade Demo CA');
  writeFileSync(join(pki, 'ca.crt'), ca.cert);
  const server = writePem(pki, 'sidecar', await ca.issue({ commonName: 'palisade-sidecar', spiffeId: 'spiffe://demo.local/ns/shop/sa/orders', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], usage: 'server' }));
  const rogueCa = await createDevCa('Rogue CA');

  const policyFile = join(dir, 'policy.yaml');
  const idp = await startDemoIdp('orders-api');
  const policyNote = prepareDemoPolicy(policyFile, idp, o.keepPolicy ?? false);
  if (policyNote) say(`note: ${policyNote}`);
  const alice = await idp.mint('alice', { tenant: 'acme', scope: 'orders:read' });
  const bob = await idp.mint('bob', { tenant: 'globex', scope: 'orders:read' });
  const expired = await idp.mint('alice', { tenant: 'acme', scope: 'orders:read' }, -120);
  writeFileSync(join(pki, 'alice.jwt'), alice + '\n', { mode: 0o600 });

  const service = await startOrdersService(o.servicePort);
  const settings = loadSettings({
    PALISADE_POLICY: policyFile,
    PALISADE_LISTEN_HOST: '127.0.0.1',
    PALISADE_LISTEN_PORT: String(o.port),
    PALISADE_ADMIN_HOST: '127.0.0.1',
    PALISADE_ADMIN_PORT: String(o.adminPort),
    PALISADE_UPSTREAM: `http://127.0.0.1:${service.port}`,
    PALISADE_TLS_CERT: server.cert,
    PALISADE_TLS_KEY: server.key,
    PALISADE_TLS_CA: join(pki, 'ca.crt'),
    PALISADE_LOG_LEVEL: process.env['PALISADE_LOG_LEVEL'] ?? 'error',
  });
  const logger = createLogger({ level: settings.logLevel });
  const decisions: DecisionRecord[] = [];
  const decisionsFile = join(dir, 'decisions.ndjson');
  writeFileSync(decisionsFile, '');
  const sink = teeSink([createNdjsonSink({ target: decisionsFile }), memorySinkInto(decisions)]);
  const services = createServices(logger);
  // The detector in-process: it sees every decision and blocks straight into
  // this sidecar's block list (with Kafka, the same engine runs as `palisade
  // detector` and blocks travel over the compacted block-list topic).
  // A short warm-up and block so the loop fits in a demo.
  const detector = createEmbeddedDetector({
    services,
    logger,
    config: {
      engine: { warmupEvents: 10, warmupSeconds: 2 },
      feedback: {
        low: { action: 'none' },
        medium: { action: 'alert' },
        high: { action: 'alert' },
        critical: { action: 'alert' },
        detections: { 'rate.burst': { medium: { action: 'block', durationSeconds: o.blockSeconds }, high: { action: 'block', durationSeconds: o.blockSeconds }, critical: { action: 'block', durationSeconds: o.blockSeconds } } },
      },
    },
  });
  const sidecar = await composeSidecar({ settings, logger, sink, services, observers: [detector.observer, policyEditLines(policyFile, say)] });
  const base = `https://localhost:${sidecar.tlsPort}`;
  say(`sidecar: mTLS on ${base}, admin on http://127.0.0.1:${sidecar.adminPort} -> orders service on 127.0.0.1:${service.port}`);
  say(`policy:  ${policyFile} (edit it: changes apply without restart; each edit is reported here)`);
  say(`events:  ${decisionsFile} (one OCSF decision per request)\n`);

  const agents: Agent[] = [];
  const client = async (name: string, spiffeId: string | null, issuer = ca): Promise<Client> => {
    const pem: Pem = await issuer.issue({ commonName: name, ...(spiffeId ? { spiffeId } : {}), usage: 'client' });
    const files = writePem(pki, name, pem);
    const agent = new Agent({ connect: { ca: ca.cert, cert: pem.cert, key: pem.key, servername: 'localhost' } });
    agents.push(agent);
    return { name, spiffeId, files, agent };
  };
  const frontend = await client('frontend', 'spiffe://demo.local/ns/shop/sa/frontend');
  const ops = await client('ops', 'spiffe://demo.local/ns/ops/sa/oncall');
  const batch = await client('batch', 'spiffe://demo.local/ns/jobs/sa/batch');
  const rogue = await client('rogue', 'spiffe://demo.local/ns/shop/sa/frontend', rogueCa);

  const call = async (c: Client, method: string, path: string, token?: string): Promise<string> => {
    try {
      // The raw path goes out as typed (a URL parser would resolve "../" before sending).
      const res = await c.agent.request({ origin: base, path, method: method as 'GET', headers: token ? { authorization: `Bearer ${token}` } : {} });
      const body = await res.body.text();
      const code = res.statusCode >= 400 ? ((JSON.parse(body) as { code?: string }).code ?? '') : '';
      return `${res.statusCode} ${code}`.trim();
    } catch (err) {
      return `TLS handshake refused (${((err as Error).cause as Error | undefined)?.message ?? (err as Error).message})`.slice(0, 90);
    }
  };

  const script: [Client, string | null, string, string, string][] = [
    [frontend, null, 'GET', '/healthz', 'public health check'],
    [frontend, 'alice', 'GET', '/tenants/acme/orders/1', 'alice (tenant acme) reads her tenant\'s order'],
    [frontend, 'bob', 'GET', '/tenants/acme/orders/1', 'bob is tenant globex: tenant isolation'],
    [frontend, null, 'GET', '/tenants/acme/orders/1', 'no user token'],
    [frontend, 'expired', 'GET', '/tenants/acme/orders/1', 'expired token'],
    [frontend, 'alice', 'DELETE', '/tenants/acme/orders/1', 'order-reader may only read'],
    [frontend, null, 'GET', '/admin/users', 'admin API is for ops only'],
    [ops, null, 'GET', '/admin/users', 'ops reaches the admin API'],
    [frontend, null, 'GET', '/public/../admin/users', 'dot-segment bypass attempt'],
    [frontend, null, 'GET', '/%61dmin/users', 'percent-encoding bypass attempt'],
    [frontend, null, 'GET', '/internal/debug', 'explicit deny rule'],
    [batch, null, 'GET', '/admin/users', 'batch job is not ops: default deny'],
    [rogue, null, 'GET', '/healthz', 'certificate from a foreign CA'],
  ];
  const tokens: Record<string, string> = { alice, bob, expired };
  say('scripted requests:');
  say(`  ${'client'.padEnd(9)} ${'user'.padEnd(8)} ${'request'.padEnd(30)} ${'result'.padEnd(30)} why`);
  for (const [c, user, method, path, why] of script) {
    const result = await call(c, method, path, user ? tokens[user] : undefined);
    say(`  ${c.name.padEnd(9)} ${(user ?? '-').padEnd(8)} ${`${method} ${path}`.padEnd(30)} ${result.padEnd(30)} ${why}`);
  }
  await sink.flush();
  const last = decisions.filter((d) => d.verdict === 'deny').at(-1);
  if (last) say(`\nlast deny, as recorded: stage=${last.decidedBy} code=${last.code} rule=${last.rule ?? '-'} policy=${last.policy?.hash.slice(0, 12)} request_id=${last.requestId}`);

  // ---- the detector loop: abuse, alert, block, expiry ----
  const scraper = await client('scraper', 'spiffe://demo.local/ns/shop/sa/scraper');
  say(`\ndetector loop: "scraper" (${scraper.spiffeId}) behaves, then floods GET /healthz`);
  for (let i = 0; i < 12; i++) {
    await call(scraper, 'GET', '/healthz');
    await new Promise((r) => setTimeout(r, 250));
  }
  const floodStart = Date.now();
  let blockedAt = 0;
  let sent = 0;
  const flood = async () => {
    while (blockedAt === 0 && Date.now() - floodStart < 20_000) {
      sent++;
      const r = await call(scraper, 'GET', '/healthz');
      if (r.includes('BLOCKED') && blockedAt === 0) blockedAt = Date.now();
    }
  };
  await Promise.all(Array.from({ length: 16 }, flood));
  if (blockedAt === 0) {
    say('  the detector did not block the flood within 20 s (see the alerts below)');
  } else {
    say(`  flood: ${sent} requests; first 403 BLOCKED ${blockedAt - floodStart} ms after the flood started`);
  }
  for (const a of detector.alerts.filter((x) => x.anomaly.client.key === scraper.spiffeId).slice(0, 3)) {
    say(`  alert ${a.anomaly.detection} (${a.anomaly.severity}) -> ${a.action}: ${a.anomaly.summary}`);
  }
  const entry = blockListStore(services).get('spiffeId', scraper.spiffeId ?? '');
  if (entry) {
    say(`  block list: ${entry.kind}=${entry.value} source=${entry.source} rule=${entry.rule ?? '-'} expires in ${Math.round(((entry.expiresAt ?? Date.now()) - Date.now()) / 1000)} s`);
    say(`  frontend meanwhile: GET /healthz -> ${await call(frontend, 'GET', '/healthz')} (other clients are not affected)`);
    if (o.once) {
      while (blockListStore(services).get('spiffeId', scraper.spiffeId ?? '')) await new Promise((r) => setTimeout(r, 200));
      say(`  block expired; scraper: GET /healthz -> ${await call(scraper, 'GET', '/healthz')}`);
    } else {
      const off = blockListStore(services).onChange((c) => {
        if (c.type !== 'expired' || c.entry.value !== scraper.spiffeId) return;
        off();
        void call(scraper, 'GET', '/healthz').then((r) => say(`\n[detector loop] the scraper's block expired; scraper: GET /healthz -> ${r}`));
      });
    }
  }

  const curl = (c: Client, path: string) => `curl --cacert ${join(pki, 'ca.crt')} --cert ${c.files.cert} --key ${c.files.key} ${base}${path}`;
  say('\ntry more:');
  say(`  ${curl(frontend, '/tenants/acme/orders/2')} -H "Authorization: Bearer $(cat ${join(pki, 'alice.jwt')})"`);
  say(`  ${curl(ops, '/admin/users')}`);
  say(`  tail -f ${decisionsFile}`);
  say(`  npm run palisade -- policy explain ${policyFile} --method GET --path /admin/users --spiffe-id ${ops.spiffeId}`);
  say(`  curl http://127.0.0.1:${sidecar.adminPort}/readyz`);

  return {
    sidecar,
    decisions,
    services,
    async close() {
      await sidecar.close();
      await Promise.all(agents.map((a) => a.close()));
      await service.close();
      await idp.close();
      await detector.close();
    },
  };
}
