/**
 * The settings that give a benchmark sidecar the Kafka decision sink, as bench/run.ts's
 * sidecar-full-kafka scenario sets them: the broker at PALISADE_KAFKA_BROKERS (default
 * 127.0.0.1:19092; `bash deploy/kafka/broker.sh start`), topics unique to the process
 * (left on the broker) and a disk spool with room for the whole run.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

/** `dir`: the run's temporary directory (the spool goes under it); `name`: unique per sidecar. */
export function kafkaSinkEnv(dir: string, name: string): Record<string, string> {
  const run = `bench-${process.pid}-${name}`;
  const spool = join(dir, `spool-${name}`);
  mkdirSync(spool, { recursive: true });
  return {
    PALISADE_DECISIONS_THREAD: 'worker',
    PALISADE_KAFKA_BROKERS: process.env['PALISADE_KAFKA_BROKERS'] || '127.0.0.1:19092',
    PALISADE_KAFKA_TOPIC_DECISIONS: `${run}-decisions`,
    PALISADE_KAFKA_TOPIC_BLOCKLIST: `${run}-blocklist`,
    PALISADE_KAFKA_TOPIC_ALERTS: `${run}-alerts`,
    PALISADE_SPOOL_DIR: spool,
    PALISADE_SPOOL_MAX_BYTES: String(4 * 1024 ** 3),
  };
}
