/**
 * A real JWKS HTTP server on loopback for the tests: serves the keys it is
 * given, counts requests, and can fail (HTTP 500), hang, or stop listening.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { listenOnLoopback } from '../../support/loopback.ts';
import type { JWK } from 'jose';

export interface JwksServer {
  readonly url: string;
  /** Requests received (every mode). */
  readonly requests: number;
  keys: JWK[];
  /** ok: 200 with keys; error: 500; hang: never answers (until close). */
  mode: 'ok' | 'error' | 'hang';
  /** Extra response headers of a 200 or 304 (Cache-Control, Age, Expires...). */
  headers: Record<string, string>;
  /** Send an ETag and answer a matching If-None-Match with 304. */
  etags: boolean;
  /** 304 answers so far. */
  readonly notModified: number;
  /** Stops listening: connections are refused from now on. */
  stop(): Promise<void>;
  close(): Promise<void>;
}

export async function startJwksServer(keys: JWK[] = []): Promise<JwksServer> {
  let requests = 0;
  let notModified = 0;
  const state = { keys, mode: 'ok' as JwksServer['mode'], headers: {} as Record<string, string>, etags: false };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests++;
    req.resume();
    if (state.mode === 'hang') {
      // Never answer; stop() drops the connection.
      return;
    }
    if (state.mode === 'error') {
      res.statusCode = 500;
      res.end('boom');
      return;
    }
    const body = JSON.stringify({ keys: state.keys });
    for (const [k, v] of Object.entries(state.headers)) res.setHeader(k, v);
    if (state.etags) {
      // A validator of the body: a conditional request for the same keys gets 304 with the same headers.
      const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 16)}"`;
      res.setHeader('etag', etag);
      if (req.headers['if-none-match'] === etag) {
        notModified++;
        res.statusCode = 304;
        res.end();
        return;
      }
    }
    res.setHeader('content-type', 'application/jwk-set+json');
    res.end(body);
  });
  const { port, stop } = await listenOnLoopback(server);
  return {
    url: `http://127.0.0.1:${port}/jwks.json`,
    get requests() {
      return requests;
    },
    get keys() {
      return state.keys;
    },
    set keys(k: JWK[]) {
      state.keys = k;
    },
    get mode() {
      return state.mode;
    },
    set mode(m: JwksServer['mode']) {
      state.mode = m;
    },
    get headers() {
      return state.headers;
    },
    get etags() {
      return state.etags;
    },
    set etags(on: boolean) {
      state.etags = on;
    },
    get notModified() {
      return notModified;
    },
    set headers(h: Record<string, string>) {
      state.headers = h;
    },
    stop,
    close: stop,
  };
}
