/**
 * One traffic listener as a fastify instance (mTLS, or the plain one a policy may allow):
 * server options and timeouts, the upstream client, the hooks that open and record each
 * request's outcome, and the routes that all lead to the request handler.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import replyFrom from '@fastify/reply-from';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Settings } from '../config/settings.ts';
import type { LoadedCredentials } from '../tls/credentials.ts';
import type { Tracing } from '../telemetry/tracing.ts';
import { requestId } from '../util/ids.ts';
import { createClientErrorHandler, createErrorHandler, recordAbort } from './client-errors.ts';
import { createRequestHandler, type HandlerDeps } from './handler.ts';
import { openOutcome, upstreamEnded, type Notify } from './outcome.ts';
import { secureContextOptions } from './tls-context.ts';

export interface AppDeps extends Omit<HandlerDeps, 'kind'> {
  readonly settings: Settings;
  readonly tracing: Tracing;
  readonly notify: Notify;
  /** The mTLS listener's credentials (unused by the plain listener). */
  readonly creds: LoadedCredentials;
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];

export function buildApp(kind: 'tls' | 'plain', deps: AppDeps): FastifyInstance {
  const { settings, record, notify, tracing } = deps;
  const scheme = kind === 'tls' ? 'https' : 'http';
  const errorHandler = createErrorHandler(deps, scheme);
  // A client error (timeout, bad framing) on a socket whose request is already in a
  // handler belongs to that request's one decision.
  const inflight = new WeakMap<Socket, FastifyRequest>();
  // Node enforces headersTimeout/requestTimeout only when it sweeps its connections
  // (every 30 s by default); sweep often enough that a slow client is cut near its deadline.
  const connectionsCheckingInterval = Math.max(50, Math.min(1000, Math.floor(Math.min(settings.headersTimeoutMs, settings.requestTimeoutMs) / 4)));
  const serverOptions = {
    logger: false,
    genReqId: () => requestId(),
    requestIdHeader: false as const,
    return503OnClosing: true,
    connectionTimeout: 0,
    keepAliveTimeout: settings.keepAliveTimeoutMs,
    requestTimeout: settings.requestTimeoutMs,
    // Node closes a client that has not sent full headers in time: slowloris.
    http: kind === 'plain' ? { connectionsCheckingInterval } : undefined,
    clientErrorHandler: createClientErrorHandler(deps, inflight),
    // The router's own refusals (a path it cannot decode, a parameter too long) go to the same
    // error handler as every other error: problem+json, a request id, one decision. Without
    // this, fastify answered them itself in its own JSON, with no decision record.
    frameworkErrors: errorHandler,
    ...(kind === 'tls' ? { https: { ...secureContextOptions(deps.creds, settings), connectionsCheckingInterval } } : {}),
  };
  const app = Fastify(serverOptions as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;
  (app.server as Server).headersTimeout = settings.headersTimeoutMs;
  app.decorateRequest('palisade', null);
  // Bodies are not parsed by fastify: they stream to the upstream, and the
  // validation stage reads them itself (bounded) when a schema needs them.
  app.removeAllContentTypeParsers();
  const passThrough = (_req: unknown, payload: unknown, done: (err: null, body: unknown) => void) => done(null, payload);
  app.addContentTypeParser('*', passThrough);
  // The same parser under the usual API type: fastify caches the parser it finds for a named
  // type, but looks the catch-all up again (parsing the header) on every request: 0.35 µs.
  app.addContentTypeParser('application/json', passThrough);
  app.register(replyFrom, {
    base: settings.upstream,
    disableRequestLogging: true,
    undici: {
      connections: settings.upstreamConnections,
      pipelining: 1,
      connectTimeout: settings.upstreamConnectTimeoutMs,
      headersTimeout: settings.upstreamTimeoutMs,
      bodyTimeout: settings.upstreamTimeoutMs,
      keepAliveTimeout: 30_000,
    },
  });

  app.addHook('onRequest', (request, _reply, done) => {
    const raw = request.raw;
    if (raw.socket) inflight.set(raw.socket as Socket, request);
    request.palisade = openOutcome(raw, request.id, deps.policy(), tracing.startRequest(raw.headers, raw.method ?? 'GET', scheme), scheme, true);
    notify('onRequestStart');
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    const o = request.palisade;
    if (o) {
      if (o.upstreamStart !== null) upstreamEnded(o);
      record(o, reply.statusCode);
    }
    done();
  });
  app.addHook('onRequestAbort', (request, done) => {
    if (request.palisade) recordAbort(request.palisade, record, deps.logger, 'request');
    done();
  });
  app.setErrorHandler(errorHandler);

  const handler = createRequestHandler({ ...deps, kind });
  app.route({ method: METHODS, url: '/*', handler });
  app.route({ method: METHODS, url: '/', handler });
  app.setNotFoundHandler(handler);
  return app;
}
