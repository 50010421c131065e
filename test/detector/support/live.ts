/**
 * Live traffic for the detector tests and the benchmark: the simulated API on
 * the harness upstream, one mTLS agent per simulated client bound to its own
 * loopback address (127.x.y.z, so IP-keyed clients are distinct), and a
 * replayer that sends a generated schedule in real time and records what the
 * sidecar answered.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Agent, request } from 'undici';
import type { SimClient, SimRequest } from '../../../detectors/sim/traffic.ts';
import type { Pki, Upstream } from '../../support/harness.ts';

const STATUS: Readonly<Record<SimRequest['outcome'], number>> = { ok: 200, 'auth-fail': 401, 'not-found': 404, violation: 400 };

/** The simulated API: the status comes from x-sim-outcome (the schedule decided it). */
export function simApi(req: IncomingMessage, _body: string, res: ServerResponse): void {
  const outcome = (req.headers['x-sim-outcome'] as SimRequest['outcome'] | undefined) ?? 'ok';
  res.statusCode = STATUS[outcome] ?? 200;
  res.setHeader('content-type', 'application/json');
  res.end('{"ok":true}');
}

export function useSimApi(up: Upstream): void {
  up.handler = simApi;
}

export interface LiveClient {
  readonly sim: SimClient;
  /** One agent per sidecar (each harness has its own CA). */
  readonly agents: Agent[];
}

/** Issues each client a certificate from every harness CA (same SPIFFE ID) and binds its agents to its IP. */
export async function liveClients(pkis: readonly Pki[], clients: readonly SimClient[], o: { anonymous?: (c: SimClient) => boolean } = {}): Promise<LiveClient[]> {
  const out: LiveClient[] = [];
  for (const c of clients) {
    const agents: Agent[] = [];
    for (const pki of pkis) {
      // An "anonymous" client still needs a certificate for the mTLS listener; it has no SPIFFE SAN.
      const pem = await pki.client(o.anonymous?.(c) ? null : c.spiffeId, { cn: c.name });
      agents.push(new Agent({ connections: 16, pipelining: 1, localAddress: c.ip, connect: { ca: pki.ca.cert, cert: pem.cert, key: pem.key, servername: 'localhost', rejectUnauthorized: true } }));
    }
    out.push({ sim: c, agents });
  }
  return out;
}

export async function closeClients(cs: readonly LiveClient[]): Promise<void> {
  await Promise.all(cs.flatMap((c) => c.agents.map((a) => a.close())));
}

export interface Sent {
  readonly req: SimRequest;
  /** Wall time the request was sent and answered, epoch ms. */
  readonly sentAt: number;
  readonly doneAt: number;
  readonly status: number;
  readonly code: string | null;
}

function bodyOf(req: SimRequest): string | undefined {
  if (req.method !== 'POST') return undefined;
  return `{"p":"${'x'.repeat(Math.max(0, req.bytesIn - 8))}"}`;
}

export interface ReplayOptions {
  /** Base URLs of the sidecars; a client's request goes to sidecar (client index + request number) % n, or always to `pin`. */
  readonly bases: readonly string[];
  /** Wall time of schedule t=0; default now. */
  readonly startAt?: number;
  /** Stop sending a client's requests once this says so (e.g. after its first BLOCKED). */
  readonly stopClient?: (client: number, s: Sent) => boolean;
  readonly onResult?: (s: Sent) => void;
  /** Most requests in flight at once (all clients). Default 256. */
  readonly maxInFlight?: number;
  /** Extra request headers (e.g. an Authorization bearer token). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Sends the schedule in real time (10 ms ticks); resolves with every answer once all are in. */
export async function replay(clients: readonly LiveClient[], schedule: readonly SimRequest[], o: ReplayOptions): Promise<Sent[]> {
  const byIndex = new Map(clients.map((c) => [c.sim.index, c]));
  const start = o.startAt ?? Date.now();
  const results: Sent[] = [];
  const stopped = new Set<number>();
  const pending = new Set<Promise<void>>();
  const max = o.maxInFlight ?? 256;
  let i = 0;
  let n = 0;
  while (i < schedule.length) {
    const now = Date.now() - start;
    while (i < schedule.length && (schedule[i] as SimRequest).t <= now) {
      const req = schedule[i++] as SimRequest;
      if (stopped.has(req.client)) continue;
      if (pending.size >= max) continue; // the client side is saturated: skip rather than fall behind
      const c = byIndex.get(req.client);
      if (!c) continue;
      const which = (req.client + n++) % o.bases.length;
      const agent = c.agents[which] as Agent;
      const base = o.bases[which] as string;
      const body = bodyOf(req);
      const sentAt = Date.now();
      const p = request(`${base}${req.path}`, {
        dispatcher: agent,
        method: req.method,
        headers: { ...o.headers, 'x-sim-outcome': req.outcome, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body } : {}),
      })
        .then(async (res) => {
          const text = await res.body.text();
          let code: string | null = null;
          if (res.statusCode >= 400) {
            try {
              code = (JSON.parse(text) as { code?: string }).code ?? null;
            } catch {
              code = null;
            }
          }
          const s: Sent = { req, sentAt, doneAt: Date.now(), status: res.statusCode, code };
          results.push(s);
          o.onResult?.(s);
          if (o.stopClient?.(req.client, s)) stopped.add(req.client);
        })
        .catch(() => undefined)
        .finally(() => pending.delete(p));
      pending.add(p);
    }
    const next = i < schedule.length ? (schedule[i] as SimRequest).t - (Date.now() - start) : 0;
    await new Promise((r) => setTimeout(r, Math.max(1, Math.min(10, next))));
  }
  await Promise.all(pending);
  return results;
}
