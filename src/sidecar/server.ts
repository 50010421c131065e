/**
 * The sidecar process: an mTLS listener (and, only if the policy allows it, a
 * plain-HTTP one) that runs every request through the policy's stages and
 * either answers with problem+json or streams it to the upstream; an admin
 * listener for probes; policy and certificate hot reload; exactly one
 * decision record per request.
 *
 * This file only assembles the parts and closes them in order:
 *   policy-holder.ts   the policy in force (read, hash, reload, watch)
 *   tls-context.ts     the mTLS secure context, peer refusal, credential reload
 *   app.ts             one traffic listener (fastify, reply-from, hooks, routes)
 *   handler.ts         context -> runPipeline -> forward
 *   outcome.ts         the per-request outcome and the one decision-record builder
 *   client-errors.ts   malformed requests, HTTP-layer errors, clients that leave
 *   admin.ts           /livez, /readyz, /metrics
 */
import type { Server } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Settings } from '../config/settings.ts';
import type { DecisionSink } from '../decision/sink.ts';
import { createClientIpResolver } from '../http/client-ip.ts';
import type { CompiledPolicy } from '../policy/compiled.ts';
import { keyPathsOf } from '../policy/signature.ts';
import { TRACING_OFF, type Tracing } from '../telemetry/tracing.ts';
import { readCredentials } from '../tls/credentials.ts';
import { startAdmin } from './admin.ts';
import { buildApp, type AppDeps } from './app.ts';
import type { SidecarObserver } from './observer.ts';
import { createRecorder, type Notify } from './outcome.ts';
import { startPolicyHolder, type PolicyRefusal } from './policy-holder.ts';
import type { Services } from '../pipeline/services.ts';
import { guardTlsListener, tlsFilesOf } from './tls-context.ts';

export interface SidecarOptions {
  readonly settings: Settings;
  readonly logger: Logger;
  readonly sink: DecisionSink;
  readonly services: Services;
  readonly observers?: readonly SidecarObserver[];
  /** Request tracing (src/telemetry/tracing.ts); off when absent. */
  readonly tracing?: Tracing;
  /** Adds routes to the admin listener before it listens (GET /metrics). */
  readonly adminRoutes?: (admin: FastifyInstance) => void;
  /** Extra readiness condition: returns why the sidecar is not ready yet, or null. */
  readonly notReadyReason?: () => string | null;
}

export interface Sidecar {
  readonly tlsPort: number;
  readonly adminPort: number;
  readonly plaintextPort: number | null;
  policy(): CompiledPolicy | null;
  /** The last policy refused since the one in force was applied, or null. */
  policyRefusal(): PolicyRefusal | null;
  /** Re-reads the policy file now. Resolves to the error if it was refused. */
  reloadPolicy(): Promise<Error | null>;
  /** Stops accepting, finishes in-flight requests, flushes decisions. */
  close(): Promise<void>;
  readonly admin: FastifyInstance;
}

const portOf = (app: FastifyInstance) => (app.server.address() as { port: number }).port;

export async function startSidecar(options: SidecarOptions): Promise<Sidecar> {
  const { settings, logger, sink, services } = options;
  const observers = options.observers ?? [];
  // Observers are called synchronously on the request path; one that throws is logged, never the request's problem.
  const notify: Notify = (k, ...args) => {
    for (const o of observers) {
      const f = o[k] as ((...a: unknown[]) => void) | undefined;
      if (f) {
        try {
          f.apply(o, args);
        } catch (err) {
          logger.error({ err }, `observer ${String(k)} failed`);
        }
      }
    }
  };

  const holder = await startPolicyHolder({
    file: settings.policyFile,
    services,
    logger,
    onLoaded: (p) => notify('onPolicyLoaded', p),
    onRefused: (e) => notify('onPolicyRefused', e),
    signatures: { keyFiles: keyPathsOf(settings.policyPublicKeys), required: settings.policyRequireSignature },
  });
  const creds = readCredentials(tlsFilesOf(settings));
  const deps: AppDeps = {
    settings,
    logger,
    notify,
    creds,
    tracing: options.tracing ?? TRACING_OFF,
    policy: holder.current,
    // X-Forwarded-For is believed only from these peers (throws CONFIG_INVALID on a bad entry).
    clientIpOf: createClientIpResolver(settings.trustedProxies),
    record: createRecorder(sink, logger, notify, settings.accessLog),
  };

  const app = buildApp('tls', deps);
  const credWatcher = guardTlsListener(app.server as Server, creds, settings, logger, notify);
  await app.listen({ host: settings.listenHost, port: settings.listenPort });
  let plain: FastifyInstance | null = null;
  if (holder.current()?.allowPlaintext) {
    plain = buildApp('plain', deps);
    await plain.listen({ host: settings.listenHost, port: settings.plaintextPort });
  }

  let closing = false;
  const admin = await startAdmin({
    host: settings.adminHost,
    port: settings.adminPort,
    policy: holder.current,
    lastRefusal: holder.lastRefusal,
    closing: () => closing,
    ...(options.notReadyReason ? { notReadyReason: options.notReadyReason } : {}),
    ...(options.adminRoutes ? { routes: options.adminRoutes } : {}),
  });

  const tlsPort = portOf(app);
  const adminPort = portOf(admin);
  const plaintextPort = plain ? portOf(plain) : null;
  logger.info({ tlsPort, adminPort, plaintextPort, upstream: settings.upstream }, 'sidecar listening');

  async function shutdown(): Promise<void> {
    closing = true;
    holder.close();
    credWatcher.close();
    await Promise.all([app.close(), plain?.close()]);
    await sink.close();
    // The last word on "lose nothing": every record accepted is delivered, or counted as dropped.
    const st = sink.stats();
    logger.info({ accepted: st.accepted, delivered: st.delivered, dropped: st.dropped, buffered: st.buffered }, 'decision sink closed');
    await admin.close();
  }
  let closed: Promise<void> | null = null;
  return {
    tlsPort,
    adminPort,
    plaintextPort,
    admin,
    policy: holder.current,
    policyRefusal: holder.lastRefusal,
    reloadPolicy: holder.reload,
    close() {
      closed ??= shutdown();
      return closed;
    },
  };
}
