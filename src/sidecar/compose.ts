/**
 * Wires a sidecar process from settings: logger, decision sink, shared
 * services, observers. The one place that decides which parts run, so the
 * CLI, the demo and the tests start the same thing.
 */
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import type { Settings } from '../config/settings.ts';
import { eventDetailOf } from '../decision/encode.ts';
import { createKafkaSink } from '../decision/sinks/kafka/index.ts';
import { createNdjsonSink } from '../decision/sinks/ndjson.ts';
import { createWorkerSink } from '../decision/sinks/worker/sink.ts';
import { createKafkaClient, parseBrokers } from '../kafka/client.ts';
import { startBlockListFeed, type BlockListFeed } from '../blocklist/kafka-feed.ts';
import { palisadeVersion } from '../decision/ocsf/product.ts';
import { startStatusPublisher, type StatusPublisher } from '../fleet/publisher.ts';
import { BLOCKLIST_HISTORY, podIdentity } from '../fleet/status.ts';
import { palisadeTopics } from '../kafka/topics.ts';
import type { DecisionSink } from '../decision/sink.ts';
import type { SidecarObserver } from './observer.ts';
import { startSidecar, type Sidecar } from './server.ts';
import { createServices, type Services } from '../pipeline/services.ts';
import { authnMetricsFrom } from '../authn/metrics.ts';
import { authnServices } from '../authn/services.ts';
import { blockListStore } from '../blocklist/store.ts';
import { startQuotaFeed, type QuotaFeed } from '../ratelimit/quota-feed.ts';
import { quotaStore } from '../ratelimit/quota-store.ts';
import { addMetricsRoute } from '../telemetry/admin-metrics.ts';
import { createSidecarMetrics, type SidecarMetrics } from './metrics.ts';
import { startTracing, tracingOptionsFromEnv, type Tracing } from '../telemetry/tracing.ts';

export interface ComposeOptions {
  readonly settings: Settings;
  readonly logger: Logger;
  /** Overrides the sink chosen from settings (tests, the embedded demo). */
  readonly sink?: DecisionSink;
  readonly observers?: readonly SidecarObserver[];
  readonly services?: Services;
  /** Prometheus metrics served on the admin listener (GET /metrics); default: a fresh registry. */
  readonly metrics?: SidecarMetrics;
  /** Request tracing; default: from the settings and OTEL_* variables (off without an endpoint). */
  readonly tracing?: Tracing;
  /** Name of the sink in the decision sink metrics; default "ndjson", or "custom" for options.sink. */
  readonly sinkName?: string;
}

// Tests and tools build their services where they build a sidecar.
export { createServices };

/**
 * Where the decision sink runs (PALISADE_DECISIONS_THREAD). "auto" picks per sink, by
 * measurement (docs/benchmark.md, pinned to one core, 32 connections): NDJSON costs ~1.5 µs
 * of encoding and a buffered write per event, less than handing the record to another thread
 * (the hand-over, the thread's wake-ups and a second heap: 0.95-0.98x the bare proxy's
 * throughput on the request thread against 0.79-0.83x with the thread, and ~15 MiB less
 * idle RSS); kafkajs's batch building and compression in a thread of their own keep the
 * request thread's p99 at 5 ms instead of 36 ms and cost less CPU (1.42x against 1.72x).
 */
export function decisionThreadOf(setting: Settings['decisionsThread'], kafka: boolean): 'worker' | 'main' {
  if (setting === 'auto') return kafka ? 'worker' : 'main';
  return setting === 'worker' ? 'worker' : 'main';
}

/** The decision sink the settings name, on the request thread or in a thread of its own. */
async function openSink(settings: Settings, logger: Logger, kafka: boolean): Promise<DecisionSink> {
  const thread = decisionThreadOf(settings.decisionsThread, kafka);
  logger.info({ sink: kafka ? 'kafka' : 'ndjson', thread, setting: settings.decisionsThread }, 'decision sink opening');
  if (thread === 'worker') return createWorkerSink({ spec: kafka ? { kind: 'kafka', settings } : { kind: 'ndjson', target: settings.decisionsFile, detail: eventDetailOf(settings.eventDetail) }, logger });
  return kafka ? createKafkaSink(settings, logger) : createNdjsonSink({ target: settings.decisionsFile, detail: eventDetailOf(settings.eventDetail) });
}

export async function composeSidecar(options: ComposeOptions): Promise<Sidecar> {
  const { settings, logger } = options;
  // Kafka when brokers are configured (docs/kafka.md), else NDJSON to stdout or a file.
  const kafka = !options.sink && parseBrokers(settings.kafkaBrokers).length > 0;
  const sink = options.sink ?? (await openSink(settings, logger, kafka));
  const services = options.services ?? createServices(logger);
  const metrics = options.metrics ?? createSidecarMetrics(new Registry());
  metrics.trackBlocklist(blockListStore(services));
  metrics.trackQuotas(quotaStore(services), services.now);
  authnServices(services).metrics = authnMetricsFrom(metrics);
  metrics.watchSink(options.sinkName ?? (options.sink ? 'custom' : kafka ? 'kafka' : 'ndjson'), () => sink.stats());
  // The optional OCSF Authentication events (docs/kafka.md) have their own accounting: a sink of their own in the metrics.
  if (kafka && settings.kafkaAuthentications) metrics.watchSink('kafka-authentications', () => sink.stats().streams?.['authentications'] ?? { accepted: 0, delivered: 0, dropped: 0, buffered: 0 });
  // The tracing SDK is process-wide: started here only when the caller did not bring one, and then shut down with the sidecar.
  const ownTracing = options.tracing === undefined;
  const tracing = options.tracing ?? (await startTracing(tracingOptionsFromEnv(process.env, settings)));
  // With Kafka, /readyz waits until the block list is rebuilt from its topic, so a new pod does
  // not take traffic before it knows who is blocked; bounded, so a Kafka outage cannot keep new
  // pods out of service for good (PALISADE_BLOCKLIST_READY_TIMEOUT_MS).
  let feed: BlockListFeed | null = null;
  const readyDeadline = Date.now() + settings.blocklistReadyTimeoutMs;
  const notReadyReason = () => (feed !== null && !feed.stats().ready && Date.now() < readyDeadline ? 'block list not yet rebuilt from Kafka' : null);
  let sidecar: Sidecar;
  try {
    sidecar = await startSidecar({
      notReadyReason,
      settings,
      logger,
      sink,
      services,
      observers: [metrics.observer, ...(options.observers ?? [])],
      tracing,
      adminRoutes: (admin) => addMetricsRoute(admin, metrics.registry),
    });
  } catch (err) {
    // A sidecar that cannot start (a refused policy: fail closed) must exit, not hang on what was opened for it.
    if (!options.sink) await sink.close();
    if (ownTracing) await tracing.shutdown();
    throw err;
  }
  // With Kafka, every sidecar follows the block list the detector and operators publish (compacted topic).
  feed = parseBrokers(settings.kafkaBrokers).length > 0 ? startBlockListFeed({ kafka: createKafkaClient(settings, logger), topic: settings.kafkaTopicBlocklist, store: blockListStore(services), logger }) : null;
  const status = feed && settings.fleetStatusIntervalMs > 0 ? startFleetStatus(settings, logger, sidecar, feed) : null;
  // And the fleet-wide quota entries the detector's aggregator publishes (docs/quotas.md).
  const quotas: QuotaFeed | null = feed ? startQuotaFeed({ kafka: createKafkaClient(settings, logger), topic: settings.kafkaTopicQuotas, store: quotaStore(services), logger, now: services.now }) : null;
  if (!ownTracing && !feed) return sidecar;
  return {
    ...sidecar,
    async close() {
      // The feeds are closed beside the drain, not after it: the drain already uses the grace period.
      // The status tombstone goes first thing: the pod leaves the fleet's count as it starts to drain.
      await Promise.all([sidecar.close(), feed?.close(), status?.close(), quotas?.close()]);
      if (ownTracing) await tracing.shutdown();
    },
  };
}

/** The status record on the sidecars topic (src/fleet/): policy, signature, refusals, block-list position. */
function startFleetStatus(settings: Settings, logger: Logger, sidecar: Sidecar, feed: BlockListFeed): StatusPublisher {
  // When the block list reached each recent position: `palisade blocklist list` and `add --wait` read it.
  const applied: { position: string; at: string }[] = [];
  return startStatusPublisher({
    kafka: createKafkaClient(settings, logger),
    topic: palisadeTopics(settings).sidecars,
    createTopic: settings.kafkaCreateTopics,
    identity: podIdentity(settings),
    version: palisadeVersion(),
    intervalMs: settings.fleetStatusIntervalMs,
    logger,
    facts: () => {
      const p = sidecar.policy();
      const r = sidecar.policyRefusal();
      return {
        policy: p ? { name: p.name, version: p.version, hash: p.hash, verified: p.signature.verified, keyId: p.signature.keyId } : null,
        refused: r ? { code: r.code, reason: r.reason, at: new Date(r.at).toISOString() } : null,
        blocklistTopic: settings.kafkaTopicBlocklist,
        blocklistPosition: trackApplied(applied, feed.stats()),
        blocklistApplied: applied,
      };
    },
  });
}

function trackApplied(applied: { position: string; at: string }[], st: { readonly position: string | null; readonly positionAt: number }): string | null {
  if (st.position !== null && applied.at(-1)?.position !== st.position) {
    applied.push({ position: st.position, at: new Date(st.positionAt).toISOString() });
    if (applied.length > BLOCKLIST_HISTORY) applied.shift();
  }
  return st.position;
}
