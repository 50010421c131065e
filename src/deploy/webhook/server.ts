/**
 * The HTTPS server the API server calls: POST /inject with an AdmissionReview,
 * plus /livez and /readyz for the webhook's own probes. Bounded bodies and
 * request times (the API server is the only intended caller, but the port is
 * reachable in-cluster). The serving certificate is re-read when its files
 * change, since cert-manager renews it in place.
 */
import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { WebhookSettings } from '../../config/webhook-settings.ts';
import type { InjectOptions } from '../inject/options.ts';
import { BadReview, reviewAdmission } from './admission.ts';

export const INJECT_PATH = '/inject';

export interface WebhookServer {
  readonly port: number;
  /** Re-reads the certificate files now; true when a new certificate was applied. */
  reloadCertificate(): boolean;
  /** Starts failing /readyz while still answering reviews (the first step of a shutdown). */
  drain(): void;
  close(): Promise<void>;
}

interface ServingCert {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly digest: string;
}

function readServingCert(settings: WebhookSettings): ServingCert {
  const cert = readFileSync(settings.tlsCert);
  const key = readFileSync(settings.tlsKey);
  createSecureContext({ cert, key }); // throws on a mismatched or unreadable pair
  return { cert, key, digest: createHash('sha256').update(cert).update(key).digest('hex') };
}

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new HttpError(413, `body larger than ${limit} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new HttpError(413, `body larger than ${limit} bytes`));
        req.removeAllListeners('data');
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}

export async function startWebhookServer(settings: WebhookSettings, opts: InjectOptions, log: Logger): Promise<WebhookServer> {
  let current = readServingCert(settings);
  let closing = false;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/livez') return send(res, 200, 'ok\n');
    if (path === '/readyz') return closing ? send(res, 503, 'shutting down\n') : send(res, 200, 'ready\n');
    if (path !== INJECT_PATH) return send(res, 404, 'not found\n');
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      return send(res, 405, 'method not allowed\n');
    }
    const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') return send(res, 415, 'content-type must be application/json\n');

    const body = await readBody(req, settings.maxBodyBytes);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw new HttpError(400, 'body is not valid JSON');
    }
    let result;
    try {
      result = reviewAdmission(parsed, opts);
    } catch (err) {
      if (err instanceof BadReview) throw new HttpError(400, `bad AdmissionReview: ${err.message}`);
      throw err;
    }
    const o = result.outcome;
    log.info({ uid: o.uid, namespace: o.namespace, pod: o.pod, decision: o.decision, detail: o.detail, ops: o.ops }, 'admission review');
    send(res, 200, JSON.stringify(result.review), 'application/json');
  };

  const server: Server = createServer({ cert: current.cert, key: current.key, minVersion: 'TLSv1.2' }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) {
        log.warn({ status: err.status, path: req.url }, err.message);
        send(res, err.status, `${err.message}\n`);
        // The rest of an oversized body is not worth reading.
        if (err.status === 413) res.once('finish', () => req.socket.destroy());
      } else {
        log.error({ err }, 'webhook request failed');
        send(res, 500, 'internal error\n');
      }
    });
  });
  server.requestTimeout = settings.requestTimeoutMs;
  server.headersTimeout = Math.min(settings.requestTimeoutMs, 10_000);
  server.on('tlsClientError', (err) => log.debug({ err: err.message }, 'TLS handshake failed'));

  const reloadCertificate = (): boolean => {
    let next: ServingCert;
    try {
      next = readServingCert(settings);
    } catch (err) {
      // Mid-rotation the pair can be briefly inconsistent: keep serving the old one.
      log.warn({ err: (err as Error).message }, 'serving certificate not reloaded');
      return false;
    }
    if (next.digest === current.digest) return false;
    server.setSecureContext({ cert: next.cert, key: next.key, minVersion: 'TLSv1.2' });
    current = next;
    log.info('serving certificate reloaded');
    return true;
  };
  let debounce: NodeJS.Timeout | undefined;
  const schedule = () => {
    if (debounce) clearTimeout(debounce);
    debounce = setTimeout(reloadCertificate, 100);
  };
  const watchers: FSWatcher[] = [];
  for (const dir of new Set([dirname(settings.tlsCert), dirname(settings.tlsKey)])) {
    try {
      const w = watch(dir, { persistent: false }, schedule);
      w.on('error', () => undefined);
      watchers.push(w);
    } catch {
      // Not watchable: the poll below still catches the change.
    }
  }
  const poll = setInterval(reloadCertificate, settings.certPollMs);
  poll.unref();

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(settings.port, settings.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    port,
    reloadCertificate,
    drain: () => {
      closing = true;
    },
    close: () => {
      closing = true;
      clearInterval(poll);
      if (debounce) clearTimeout(debounce);
      for (const w of watchers) w.close();
      return new Promise<void>((resolve) => {
        const force = setTimeout(() => server.closeAllConnections(), settings.shutdownGraceMs);
        force.unref();
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
    },
  };
}
