/**
 * Test harness: real certificates from a dev CA, a real upstream HTTP server,
 * a real sidecar on loopback, and an mTLS client (undici) per identity.
 * Everything binds port 0 and is torn down by `close()`.
 */
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import { loadSettings, type Settings } from '../../src/config/settings.ts';
import { createMemorySink } from '../../src/decision/sinks/ndjson.ts';
import type { DecisionRecord } from '../../src/decision/record.ts';
import { teeSink, type DecisionSink } from '../../src/decision/sink.ts';
import { createLogger } from '../../src/log/logger.ts';
import { composeSidecar, createServices } from '../../src/sidecar/compose.ts';
import type { SidecarObserver } from '../../src/sidecar/observer.ts';
import type { Sidecar } from '../../src/sidecar/server.ts';
import type { Services } from '../../src/pipeline/services.ts';
import { createDevCa, writePem, type DevCa, type Pem } from '../../src/tls/dev-ca.ts';

export interface UpstreamRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

export interface Upstream {
  readonly url: string;
  readonly port: number;
  readonly requests: UpstreamRequest[];
  /** Replace the handler (default: 200 JSON echo of method and url). */
  handler: (req: IncomingMessage, body: string, res: import('node:http').ServerResponse) => void;
  close(): Promise<void>;
}

export async function startUpstream(): Promise<Upstream> {
  const requests: UpstreamRequest[] = [];
  const up: Upstream = {
    url: '',
    port: 0,
    requests,
    handler: (req, _body, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ok: true, method: req.method, url: req.url }));
    },
    close: async () => undefined,
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      up.handler(req, body, res);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return Object.assign(up, {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  });
}

/**
 * The settings every loopback sidecar of the tests and benchmarks shares: its
 * listeners on 127.0.0.1 at free ports, this PKI's server identity and trust
 * bundle, this upstream. Callers add the policy, the log level and the rest.
 */
export function loopbackSidecarEnv(pki: Pick<Pki, 'server' | 'caFile'>, upstreamUrl: string): Record<string, string> {
  return {
    PALISADE_LISTEN_HOST: '127.0.0.1',
    PALISADE_LISTEN_PORT: '0',
    PALISADE_ADMIN_HOST: '127.0.0.1',
    PALISADE_ADMIN_PORT: '0',
    PALISADE_UPSTREAM: upstreamUrl,
    PALISADE_TLS_CERT: pki.server.cert,
    PALISADE_TLS_KEY: pki.server.key,
    PALISADE_TLS_CA: pki.caFile,
  };
}

/** A policy whose only rule lets anyone GET /items/{id}: for tests about what surrounds the decision (sinks, processes). */
export function publicItemsPolicy(name: string): string {
  return `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: ${name}, version: "1" }
spec:
  authorization:
    rules:
      - id: items
        methods: [GET]
        paths: ["/items/{id}"]
        public: true
`;
}

/** n mTLS clients of this PKI, each its own identity (spiffe://test.local/ns/load/sa/<prefix><i>). */
export async function mtlsAgents(pki: Pki, n: number, prefix: string): Promise<Agent[]> {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const pem = await pki.client(`spiffe://test.local/ns/load/sa/${prefix}${i}`);
      return new Agent({ connect: { ca: pki.ca.cert, cert: pem.cert, key: pem.key, servername: 'localhost', rejectUnauthorized: true } });
    }),
  );
}

export interface Pki {
  readonly dir: string;
  readonly ca: DevCa;
  readonly caFile: string;
  readonly server: { cert: string; key: string };
  /** Issues a client identity (certificate + key PEM). */
  client(spiffeId: string | null, options?: { notBefore?: Date; notAfter?: Date; cn?: string }): Promise<Pem>;
}

export async function createPki(dir = mkdtempSync(join(tmpdir(), 'palisade-pki-'))): Promise<Pki> {
  const ca = await createDevCa('Palisade Test CA');
  const caFile = join(dir, 'ca.crt');
  writeFileSync(caFile, ca.cert);
  const serverPem = await ca.issue({ commonName: 'palisade-sidecar', spiffeId: 'spiffe://test.local/ns/default/sa/palisade', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], usage: 'server' });
  const server = writePem(dir, 'server', serverPem);
  return {
    dir,
    ca,
    caFile,
    server,
    client: (spiffeId, o = {}) =>
      ca.issue({ commonName: o.cn ?? spiffeId ?? 'client-without-spiffe', ...(spiffeId ? { spiffeId } : {}), usage: 'client', ...(o.notBefore ? { notBefore: o.notBefore } : {}), ...(o.notAfter ? { notAfter: o.notAfter } : {}) }),
  };
}

export interface Harness {
  readonly pki: Pki;
  readonly upstream: Upstream;
  readonly sidecar: Sidecar;
  readonly settings: Settings;
  readonly policyFile: string;
  readonly decisions: DecisionRecord[];
  readonly services: Services;
  readonly base: string;
  /** An mTLS client for this identity (null SPIFFE ID = certificate without a URI SAN). */
  client(spiffeId: string | null): Promise<Agent>;
  /** Plain TLS client with no certificate. */
  anonymous(): Agent;
  writePolicy(text: string): void;
  close(): Promise<void>;
}

/** `sink`: an extra decision sink (e.g. Kafka) fed beside the in-memory one behind `decisions`; closed with the sidecar. */
export async function startHarness(policyYaml: string, o: { env?: Record<string, string>; observers?: SidecarObserver[]; services?: Services; sink?: DecisionSink; logger?: Logger } = {}): Promise<Harness> {
  const pki = await createPki();
  const upstream = await startUpstream();
  const policyFile = join(pki.dir, 'policy.yaml');
  writeFileSync(policyFile, policyYaml);
  const settings = loadSettings({
    PALISADE_POLICY: policyFile,
    ...loopbackSidecarEnv(pki, upstream.url),
    PALISADE_PLAINTEXT_PORT: '0',
    PALISADE_LOG_LEVEL: 'silent',
    ...o.env,
  });
  const logger = o.logger ?? createLogger({ level: settings.logLevel });
  const sink = createMemorySink();
  const services = o.services ?? createServices(logger);
  const sidecar = await composeSidecar({ settings, logger, sink: o.sink ? teeSink([sink, o.sink]) : sink, services, observers: o.observers ?? [] });
  const agents: Agent[] = [];
  const mk = (pem: Pem | null) => {
    const a = new Agent({ connect: { ca: pki.ca.cert, ...(pem ? { cert: pem.cert, key: pem.key } : {}), servername: 'localhost', rejectUnauthorized: true } });
    agents.push(a);
    return a;
  };
  return {
    pki,
    upstream,
    sidecar,
    settings,
    policyFile,
    decisions: sink.records,
    services,
    base: `https://127.0.0.1:${sidecar.tlsPort}`,
    client: async (spiffeId) => mk(await pki.client(spiffeId)),
    anonymous: () => mk(null),
    writePolicy: (text) => writeFileSync(policyFile, text),
    async close() {
      await sidecar.close();
      await Promise.all(agents.map((a) => a.close()));
      await upstream.close();
      rmSync(pki.dir, { recursive: true, force: true });
    },
  };
}

/** GET/POST through an agent; returns status, headers and parsed JSON (or text). */
export async function send(agent: Agent, url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  const res = await request(url, { dispatcher: agent, method: (init.method ?? 'GET') as 'GET', headers: init.headers ?? {}, ...(init.body !== undefined ? { body: init.body } : {}) });
  const text = await res.body.text();
  let json: Record<string, unknown> | null = null;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = null;
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}

/** Waits until `cond` holds, polling; for decisions that land after the response. */
export async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Sends one request with a raw request target over mTLS, byte for byte, so no
 * client library normalizes the path first (undici and WHATWG URL resolve
 * "..", even "%2e%2e"). Returns status and body.
 */
export async function rawRequest(h: Harness, target: string, spiffeId = 'spiffe://test.local/ns/raw/sa/client', extra = ''): Promise<{ status: number; body: string; raw: string }> {
  const { connect } = await import('node:tls');
  const pem = await h.pki.client(spiffeId);
  const raw = await new Promise<string>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: h.sidecar.tlsPort, ca: h.pki.ca.cert, cert: pem.cert, key: pem.key, servername: 'localhost' }, () => {
      s.write(`GET ${target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n${extra}\r\n`);
    });
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString('latin1')));
    s.on('close', () => resolve(out));
    s.on('error', reject);
  });
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0);
  const body = raw.slice(raw.indexOf('\r\n\r\n') + 4);
  return { status, body, raw };
}
