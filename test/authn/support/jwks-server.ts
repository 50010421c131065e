/**
 * A real JWKS HTTP server on loopback for the tests: serves the keys it is
 * given, counts requests, and can fail (HTTP 500), hang, or stop listening.
 */
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
  /** Extra response headers of a 200 (Cache-Control, Age, Expires...). */
  headers: Record<string, string>;
  /** Stops listening: connections are refused from now on. */
  stop(): Promise<void>;
  close(): Promise<void>;
}

export async function startJwksServer(keys: JWK[] = []): Promise<JwksServer> {
  let requests = 0;
  const state = { keys, mode: 'ok' as JwksServer['mode'], headers: {} as Record<string, string> };
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
    res.setHeader('content-type', 'application/jwk-set+json');
    for (const [k, v] of Object.entries(state.headers)) res.setHeader(k, v);
    res.end(JSON.stringify({ keys: state.keys }));
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
    set headers(h: Record<string, string>) {
      state.headers = h;
    },
    stop,
    close: stop,
  };
}
