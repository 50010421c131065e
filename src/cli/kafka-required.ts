/** Settings for the Kafka-backed commands (detector, blocklist, alerts), with a clear error when Kafka is not configured. */
import { loadSettings, type Settings } from '../config/settings.ts';
import { PalisadeError } from '../errors/codes.ts';
import { parseBrokers } from '../kafka/client.ts';

export function kafkaSettings(command: string, env: NodeJS.ProcessEnv = process.env, brokersFlag?: string): Settings {
  const settings = loadSettings(env, brokersFlag ? { kafkaBrokers: brokersFlag } : {});
  if (parseBrokers(settings.kafkaBrokers).length === 0) {
    throw new PalisadeError(
      'CONFIG_INVALID',
      `${command} needs Kafka: set PALISADE_KAFKA_BROKERS (or --brokers) to the cluster the sidecars publish to, e.g. PALISADE_KAFKA_BROKERS=kafka-0.kafka:9092. ` +
        'Without Kafka the detector runs in-process (palisade demo) and the block list is the sidecar\'s own.',
    );
  }
  return settings;
}

/**
 * kafkajs 2.2 sets timers with negative delays (its request queue), which Node 24 reports as a
 * TimeoutNegativeWarning on every short-lived command; it is harmless (Node uses 1 ms). Keep every
 * other warning.
 */
export function quietKafkajsTimerWarnings(): void {
  const printers = process.listeners('warning');
  process.removeAllListeners('warning');
  process.on('warning', (w) => {
    if (w.name === 'TimeoutNegativeWarning') return;
    for (const p of printers) p(w);
  });
}
