/**
 * Wires a sidecar process from settings: logger, decision sink, shared
 * services, observers. The one place that decides which parts run, so the
 * CLI, the demo and the tests start the same thing.
 */
import type { Logger } from 'pino';
import type { Settings } from '../config/settings.ts';
import { createKafkaSink } from '../decision/sinks/kafka/index.ts';
import { createNdjsonSink } from '../decision/sinks/ndjson.ts';
import { parseBrokers } from '../kafka/client.ts';
import type { DecisionSink } from '../decision/sink.ts';
import type { SidecarObserver } from './observer.ts';
import { startSidecar, type Sidecar } from './server.ts';
import type { Services } from './services.ts';

export interface ComposeOptions {
  readonly settings: Settings;
  readonly logger: Logger;
  /** Overrides the sink chosen from settings (tests, the embedded demo). */
  readonly sink?: DecisionSink;
  readonly observers?: readonly SidecarObserver[];
  readonly services?: Services;
}

export function createServices(logger: Logger, now: () => number = Date.now): Services {
  return { logger, now, parts: new Map() };
}

export async function composeSidecar(options: ComposeOptions): Promise<Sidecar> {
  const { settings, logger } = options;
  // Kafka when brokers are configured (docs/kafka.md), else NDJSON to stdout or a file.
  const kafka = !options.sink && parseBrokers(settings.kafkaBrokers).length > 0;
  const sink = options.sink ?? (kafka ? await createKafkaSink(settings, logger) : createNdjsonSink({ target: settings.decisionsFile }));
  const services = options.services ?? createServices(logger);
  return startSidecar({ settings, logger, sink, services, observers: options.observers ?? [] });
}
