/**
 * `GET /metrics` on an admin listener (sidecar: PALISADE_ADMIN_PORT, detector: its own admin port).
 *
 *   import { addMetricsRoute } from '../telemetry/admin-metrics.ts';
 *   addMetricsRoute(adminApp, metrics.registry);       // before adminApp.listen()
 *
 * Serves the Prometheus text exposition format (0.0.4) of one or more registries.
 */
import type { FastifyInstance, RawServerBase } from 'fastify';
import { Registry } from 'prom-client';

// Any fastify instance: the admin app's server/logger generics differ between processes.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFastify = FastifyInstance<RawServerBase, any, any, any, any>;

export function addMetricsRoute(app: AnyFastify, registries: Registry | readonly Registry[], path = '/metrics'): void {
  const registry = Array.isArray(registries) ? Registry.merge([...registries]) : (registries as Registry);
  app.get(path, { logLevel: 'warn' }, async (_req, reply) => {
    const body = await registry.metrics();
    return reply.header('content-type', registry.contentType).header('cache-control', 'no-store').send(body);
  });
}
