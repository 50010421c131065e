/**
 * A real RFC 7662 introspection server on loopback: authenticates the client
 * (Basic or form credentials), answers from a table of tokens, counts calls,
 * and can fail (500), hang, or stop listening.
 */
import { createServer, type Server } from 'node:http';
import { listenOnLoopback } from '../../support/loopback.ts';

export interface IntrospectionServer {
  readonly url: string;
  readonly calls: number;
  /** token -> response (without "active", which is true when listed). Unlisted tokens are inactive. */
  readonly tokens: Map<string, Record<string, unknown>>;
  /** How the last call authenticated. */
  readonly lastAuth: { method: 'basic' | 'post' | 'none'; clientId: string | null } | null;
  mode: 'ok' | 'error' | 'hang';
  clientId: string;
  clientSecret: string;
  stop(): Promise<void>;
  close(): Promise<void>;
}

export async function startIntrospectionServer(clientId = 'palisade', clientSecret = 's3cr3t: with spaces & symbols'): Promise<IntrospectionServer> {
  const tokens = new Map<string, Record<string, unknown>>();
  const st = { calls: 0, mode: 'ok' as IntrospectionServer['mode'], clientId, clientSecret, lastAuth: null as IntrospectionServer['lastAuth'] };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      st.calls++;
      if (st.mode === 'hang') {
        // Never answer; stop() drops the connection.
        return;
      }
      if (st.mode === 'error') {
        res.statusCode = 500;
        res.end();
        return;
      }
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      let id: string | null = null;
      let secret: string | null = null;
      let method: 'basic' | 'post' | 'none' = 'none';
      const auth = req.headers.authorization;
      if (auth?.startsWith('Basic ')) {
        const [u, p] = Buffer.from(auth.slice(6), 'base64').toString('utf8').split(':');
        // RFC 6749 2.3.1: both parts are form-urlencoded.
        const dec = (s: string | undefined) => (s === undefined ? null : decodeURIComponent(s.replace(/\+/g, ' ')));
        id = dec(u);
        secret = dec(p);
        method = 'basic';
      } else if (form.has('client_id')) {
        id = form.get('client_id');
        secret = form.get('client_secret');
        method = 'post';
      }
      st.lastAuth = { method, clientId: id };
      if (id !== st.clientId || secret !== st.clientSecret || req.method !== 'POST' || !String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) {
        res.statusCode = 401;
        res.end(JSON.stringify({ error: 'invalid_client' }));
        return;
      }
      const token = form.get('token') ?? '';
      const entry = tokens.get(token);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(entry ? { active: true, ...entry } : { active: false }));
    });
  });
  const { port, stop } = await listenOnLoopback(server);
  return {
    url: `http://127.0.0.1:${port}/oauth2/introspect`,
    get calls() {
      return st.calls;
    },
    tokens,
    get lastAuth() {
      return st.lastAuth;
    },
    get mode() {
      return st.mode;
    },
    set mode(m) {
      st.mode = m;
    },
    get clientId() {
      return st.clientId;
    },
    set clientId(v) {
      st.clientId = v;
    },
    get clientSecret() {
      return st.clientSecret;
    },
    set clientSecret(v) {
      st.clientSecret = v;
    },
    stop,
    close: stop,
  };
}
