/** Faults injected into a real kafkajs client, for tests of what Palisade does when Kafka misbehaves. */
import type { Admin, Kafka } from 'kafkajs';

type RunConfig = Parameters<ReturnType<Kafka['consumer']>['run']>[0];

/**
 * A client like `kafka` whose consumers (of the groups `pick` selects) fail their first batch
 * with an error kafkajs does not retry (`retriable: false`): kafkajs then stops the consumer for
 * good. `batches()` counts the batches handed to them, the failed one included.
 */
export function failFirstBatch(kafka: Kafka, pick: (groupId: string) => boolean = () => true): { kafka: Kafka; batches: () => number } {
  let batches = 0;
  const k = Object.create(kafka) as Kafka;
  k.consumer = (config: Parameters<Kafka['consumer']>[0]) => {
    const consumer = kafka.consumer(config);
    if (!pick(config.groupId)) return consumer;
    const run = consumer.run.bind(consumer);
    consumer.run = (rc?: RunConfig) =>
      run({
        ...rc,
        eachBatch: async (payload) => {
          if (batches++ === 0) throw Object.assign(new Error('injected: batch handler failed'), { retriable: false });
          await rc!.eachBatch!(payload);
        },
      });
    return consumer;
  };
  return { kafka: k, batches: () => batches };
}

/** A client like `kafka`, except that reading the offsets of `topic` fails with each of `faults` first, in order; `calls()` counts those reads. */
export function failTopicOffsets(kafka: Kafka, topic: string, faults: Error[]): { kafka: Kafka; calls: () => number } {
  let calls = 0;
  const k = Object.create(kafka) as Kafka;
  k.admin = (...args: Parameters<Kafka['admin']>): Admin => {
    const admin = kafka.admin(...args);
    const real = admin.fetchTopicOffsets.bind(admin);
    admin.fetchTopicOffsets = async (t: string) => {
      if (t !== topic) return real(t);
      calls++;
      const fault = faults.shift();
      if (fault) throw fault;
      return real(t);
    };
    return admin;
  };
  return { kafka: k, calls: () => calls };
}
