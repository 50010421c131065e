/**
 * The admin listener: /livez (the process answers), /readyz (a policy is in force, the
 * sidecar is not shutting down, and the caller's own condition holds: the block list
 * rebuilt from Kafka) and whatever the caller adds (GET /metrics). Plain HTTP on its own
 * address, never on the mTLS listener, so probes need no client certificate.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { CompiledPolicy } from '../policy/compiled.ts';
import type { PolicyRefusal } from './policy-holder.ts';

export interface AdminOptions {
  readonly host: string;
  readonly port: number;
  readonly policy: () => CompiledPolicy | null;
  readonly closing: () => boolean;
  /** The last policy refused since the one in force loaded (shown, not a readiness condition: the previous policy serves). */
  readonly lastRefusal?: () => PolicyRefusal | null;
  /** Extra readiness condition: returns why the sidecar is not ready yet, or null. */
  readonly notReadyReason?: () => string | null;
  /** Adds routes before it listens (GET /metrics). */
  readonly routes?: (admin: FastifyInstance) => void;
}

export async function startAdmin(options: AdminOptions): Promise<FastifyInstance> {
  const admin = Fastify({ logger: false });
  admin.get('/livez', async () => ({ status: 'ok' }));
  admin.get('/readyz', async (_req, reply) => {
    const p = options.policy();
    const closing = options.closing();
    if (closing || !p) return reply.code(503).send({ status: 'not ready', reason: closing ? 'shutting down' : 'no policy' });
    const extra = options.notReadyReason?.() ?? null;
    if (extra) return reply.code(503).send({ status: 'not ready', reason: extra });
    const refused = options.lastRefusal?.() ?? null;
    return {
      status: 'ready',
      policy: { name: p.name, version: p.version, hash: p.hash, verified: p.signature.verified, keyId: p.signature.keyId },
      ...(refused ? { lastRefused: { code: refused.code, reason: refused.reason, at: new Date(refused.at).toISOString() } } : {}),
    };
  });
  options.routes?.(admin);
  await admin.listen({ host: options.host, port: options.port });
  return admin as unknown as FastifyInstance;
}
