/**
 * kafkajs (the client Palisade uses, as its decision sink configures it), kafkajs as
 * shipped (no Palisade patches: its own gzip at level 6, record encoding and CRC, and its
 * idle timer loop) and @platformatic/kafka (pure JS, measured only: not used by Palisade)
 * side by side, producing the same events with the same guarantees to the real broker.
 * Every run is a fresh worker thread (its own module instances: kafkajs as shipped there is
 * really unpatched), so the clients do not share JIT or heap state.
 *
 *   node bench/kafka-clients.ts [--events 60000] [--batch 500] [--rounds 3] [--compression none,zstd,gzip]
 *
 * Same for both: the benchmark's real standard decision events (the full-policy request's
 * OCSF JSON, made beforehand, so the encoder's cost is not counted), the sink's key (the
 * identity; 8 of them) and headers (event-id, content-type), a murmur2 partitioner
 * compatible with the Java client's (same partition for a key), idempotent producer,
 * acks=all, one produce request in flight (as the sink sends: per-key order), batches of
 * --batch events sent one after the other, 6 partitions. kafkajs goes through Palisade's
 * own publisher (src/decision/sinks/kafka/publisher.ts, with src/kafka/'s codecs and
 * encoder patch); compression levels: zstd 3 for both, gzip 1 for Palisade's kafkajs and 6
 * (zlib's default, not configurable there) for @platformatic/kafka.
 *
 * Prints per client and compression: events/s (wall clock, tight loop) and CPU µs per
 * event (the process's user + system time over the measured events, all threads),
 * medians of interleaved rounds, and checks that the topic holds every event.
 */
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { compatibilityPartitioner, Producer, ProduceAcks, stringSerializers } from '@platformatic/kafka';
import { decisionEncoder } from '../src/decision/encode.ts';
import type { SpoolEntry } from '../src/decision/sinks/kafka/spool.ts';
import { partitionKey } from '../src/decision/sinks/kafka/key.ts';
import type { Compression } from '../src/kafka/codecs.ts';
import { loadSettings } from '../src/config/settings.ts';
import { createLogger } from '../src/log/logger.ts';
import { benchAllowRecord } from '../test/decision/ocsf/records.ts';
import { BROKERS, deleteTopics, testKafka, topicCount, uniqueTopic } from '../test/decision/sinks/kafka/support.ts';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '60000' },
    batch: { type: 'string', default: '500' },
    rounds: { type: 'string', default: '3' },
    compression: { type: 'string', default: 'none,zstd,gzip' },
  },
});
const EVENTS = Number(args.events);
const BATCH = Number(args.batch);
const ROUNDS = Number(args.rounds);
const COMPRESSIONS = args.compression!.split(',').map((c) => c.trim()) as Compression[];
const WARMUP_EVENTS = 5000;
const PARTITIONS = 6;
const HEADER_CONTENT_TYPE = 'application/json';

const topics: string[] = [];
const logger = createLogger({ level: 'warn' });

/** The events, once: the sink's entries (id, key, OCSF JSON). */
const encode = decisionEncoder('standard');
const entries: SpoolEntry[] = Array.from({ length: 4096 }, (_, i) => {
  const r = benchAllowRecord(i);
  return { id: r.id, key: partitionKey(r), value: encode(r) };
});
const eventBytes = entries.slice(0, 64).reduce((n, e) => n + Buffer.byteLength(e.value), 0) / 64;

async function createTopic(): Promise<string> {
  const topic = uniqueTopic('bench-clients');
  topics.push(topic);
  const admin = testKafka().admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
  return topic;
}

interface Client {
  send(batch: readonly SpoolEntry[]): Promise<void>;
  close(): Promise<void>;
}

async function kafkajsClient(topic: string, compression: Compression): Promise<Client> {
  // Loaded here, not at the top: src/kafka/client.ts patches kafkajs in the thread that loads it.
  const { createPublisher } = await import('../src/decision/sinks/kafka/publisher.ts');
  const { createKafkaClient } = await import('../src/kafka/client.ts');
  const settings = loadSettings({ PALISADE_KAFKA_BROKERS: BROKERS, PALISADE_KAFKA_CLIENT_ID: 'bench-kafkajs' });
  const publisher = createPublisher({ kafka: createKafkaClient(settings, logger), topic, ensure: [], compression, ackTimeoutMs: 10_000, logger });
  return {
    async send(batch) {
      const { rejected } = await publisher.publish(batch);
      if (rejected > 0) throw new Error(`kafkajs: ${rejected} refused`);
    },
    close: () => publisher.close(),
  };
}

/** kafkajs with none of src/kafka/'s changes: this thread never loads src/kafka/client.ts. */
async function kafkajsStockClient(topic: string, compression: Compression): Promise<Client> {
  const { default: kafkajs } = await import('kafkajs');
  const kafka = new kafkajs.Kafka({ clientId: 'bench-kafkajs-stock', brokers: [BROKERS], logLevel: kafkajs.logLevel.NOTHING });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: kafkajs.Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
  await producer.connect();
  const type = compression === 'gzip' ? kafkajs.CompressionTypes.GZIP : kafkajs.CompressionTypes.None;
  return {
    async send(batch) {
      await producer.send({
        topic,
        acks: -1,
        compression: type,
        messages: batch.map((e) => ({ key: e.key, value: e.value, headers: { 'event-id': e.id, 'content-type': HEADER_CONTENT_TYPE } })),
      });
    },
    close: () => producer.disconnect(),
  };
}

async function platformaticClient(topic: string, compression: Compression): Promise<Client> {
  const producer = new Producer({
    clientId: 'bench-platformatic',
    bootstrapBrokers: [BROKERS],
    serializers: stringSerializers,
    idempotent: true,
    acks: ProduceAcks.ALL,
    compression,
    // murmur2 & 0x7fffffff: the Java client's (and kafkajs's DefaultPartitioner's) placement.
    partitioner: compatibilityPartitioner,
    autocreateTopics: false,
  });
  return {
    async send(batch) {
      await producer.send({
        messages: batch.map((e) => ({ topic, key: e.key ?? undefined, value: e.value, headers: { 'event-id': e.id, 'content-type': HEADER_CONTENT_TYPE } })),
      });
    },
    close: () => producer.close(),
  };
}

interface Run {
  readonly eps: number;
  readonly cpuUs: number;
}

async function run(make: (topic: string, c: Compression) => Promise<Client>, compression: Compression): Promise<Run> {
  const topic = await createTopic();
  const client = await make(topic, compression);
  let seq = 0;
  const batchOf = (n: number) => Array.from({ length: n }, () => entries[seq++ % entries.length]!);
  try {
    for (let i = 0; i < WARMUP_EVENTS; i += BATCH) await client.send(batchOf(BATCH));
    const sent0 = seq;
    const t0 = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < EVENTS; i += BATCH) await client.send(batchOf(Math.min(BATCH, EVENTS - i)));
    const cpu = process.cpuUsage(cpu0);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const events = seq - sent0;
    const onTopic = await topicCount(topic);
    // Every acknowledged event is on the topic (idempotent: no duplicates either).
    if (onTopic !== seq) throw new Error(`${topic}: ${onTopic} on the topic, ${seq} sent`);
    return { eps: events / seconds, cpuUs: (cpu.user + cpu.system) / events };
  } finally {
    await client.close();
  }
}

const clients = [
  { name: 'kafkajs 2.2.4 as Palisade runs it', make: kafkajsClient, compressions: ['none', 'gzip', 'zstd'] },
  { name: 'kafkajs 2.2.4 as shipped', make: kafkajsStockClient, compressions: ['none', 'gzip'] },
  { name: '@platformatic/kafka 2.12.1', make: platformaticClient, compressions: ['none', 'gzip', 'zstd'] },
] as const;

if (!isMainThread) {
  // One run in this fresh thread: its result (and its topic, for the parent to delete).
  const { client, compression } = workerData as { client: number; compression: Compression };
  try {
    const result = await run(clients[client]!.make, compression);
    parentPort!.postMessage({ result, topics });
  } catch (err) {
    parentPort!.postMessage({ error: String((err as Error).stack ?? err), topics });
  }
} else {
  try {
    const cases = COMPRESSIONS.flatMap((compression) =>
      clients.flatMap((c, client) => ((c.compressions as readonly string[]).includes(compression) ? [{ name: c.name, client, compression }] : [])),
    );
    const results = cases.map(() => [] as Run[]);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, c] of cases.entries()) {
        const w = new Worker(new URL(import.meta.url), { argv: process.argv.slice(2), workerData: { client: c.client, compression: c.compression } });
        const msg = await new Promise<{ result?: Run; error?: string; topics?: string[] }>((resolve) => {
          w.once('message', resolve);
          w.once('error', (err) => resolve({ error: String(err.stack ?? err) }));
          w.once('exit', (code) => resolve({ error: `worker exited (${code}) without a result` }));
        });
        await w.terminate();
        topics.push(...(msg.topics ?? []));
        if (!msg.result) throw new Error(`${c.name}, ${c.compression}: ${msg.error}`);
        results[i]!.push(msg.result);
      }
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    console.log(`\n## producers side by side: ${EVENTS} events per run in batches of ${BATCH}, one request in flight, idempotent, acks=all, ${PARTITIONS} partitions, median of ${ROUNDS} interleaved rounds; event JSON ${eventBytes.toFixed(0)} bytes\n`);
    console.log('| client | compression | events/s (all runs) | CPU µs/event (all runs) |');
    console.log('| --- | --- | --- | --- |');
    for (const [i, c] of cases.entries()) {
      const rs = results[i]!;
      console.log(`| ${c.name} | ${c.compression} | ${median(rs.map((r) => r.eps)).toFixed(0)} (${rs.map((r) => r.eps.toFixed(0)).join(', ')}) | ${median(rs.map((r) => r.cpuUs)).toFixed(1)} (${rs.map((r) => r.cpuUs.toFixed(1)).join(', ')}) |`);
    }
  } finally {
    await deleteTopics(topics);
  }
}
