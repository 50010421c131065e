/**
 * The demo's protected service: a tiny multi-tenant orders API on localhost.
 * It trusts the identity headers the sidecar sets, like a real service
 * behind Palisade would, and never checks anything itself.
 */
import { createServer, type Server } from 'node:http';

export interface OrdersService {
  readonly port: number;
  close(): Promise<void>;
}

const ORDERS: Record<string, Record<string, { id: string; item: string; qty: number }>> = {
  acme: { '1': { id: '1', item: 'anvil', qty: 2 }, '2': { id: '2', item: 'rocket skates', qty: 1 } },
  globex: { '7': { id: '7', item: 'hammock', qty: 3 } },
};

export async function startOrdersService(port = 0, host = '127.0.0.1'): Promise<OrdersService> {
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const who = req.headers['x-palisade-identity'] ?? 'anonymous';
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === '/healthz') return send(200, { status: 'ok' });
    const m = /^\/tenants\/([^/]+)\/orders(?:\/([^/]+))?$/.exec(url.pathname);
    if (m) {
      const tenant = ORDERS[m[1] ?? ''];
      if (!tenant) return send(404, { error: 'no such tenant' });
      if (req.method === 'POST') {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => send(201, { created: JSON.parse(body || '{}') as unknown, by: who }));
        return;
      }
      if (!m[2]) return send(200, { orders: Object.values(tenant), caller: who });
      const order = tenant[m[2]];
      return order ? send(200, { order, caller: who }) : send(404, { error: 'no such order' });
    }
    if (url.pathname.startsWith('/admin')) return send(200, { admin: true, caller: who });
    send(404, { error: 'not found' });
  });
  await new Promise<void>((r) => server.listen(port, host, r));
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
