// Checks the development/CI broker from deploy/kafka/broker.sh with two independent
// clients: kafkajs (what Palisade uses) writes, kcat (librdkafka, an outside client)
// reads. The test command starts the broker before vitest runs.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, Partitioners, logLevel } from 'kafkajs';
import type { Admin } from 'kafkajs';

const brokers = (process.env.PALISADE_KAFKA_BROKERS ?? `127.0.0.1:${process.env.KAFKA_PORT ?? '19092'}`)
  .split(',')
  .map((b) => b.trim())
  .filter((b) => b.length > 0);
const bootstrap = brokers.join(',');

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function kcat(args: string[], input?: string): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile('kcat', ['-b', bootstrap, ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err && (err.killed === true || typeof err.code !== 'number')) {
        // Not an exit status: kcat missing (ENOENT) or killed by the timeout.
        reject(new Error(`kcat ${args.join(' ')} did not run to the end: ${err.message}\n${stderr}`));
        return;
      }
      resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
    child.stdin?.end(input ?? '');
  });
}

interface KcatMessage {
  topic: string;
  partition: number;
  offset: number;
  key: string | null;
  payload: string | null;
  headers?: string[] | null;
}

function uniqueTopic(purpose: string): string {
  return `palisade-test-broker-${purpose}-${process.pid}-${randomUUID().slice(0, 8)}`;
}

describe('development Kafka broker (deploy/kafka/broker.sh)', () => {
  const kafka = new Kafka({ clientId: 'palisade-broker-test', brokers, logLevel: logLevel.ERROR });
  let admin: Admin;
  const created: string[] = [];

  beforeAll(async () => {
    admin = kafka.admin();
    await admin.connect();
  });

  afterAll(async () => {
    if (created.length > 0) await admin.deleteTopics({ topics: created }).catch(() => undefined);
    await admin.disconnect();
  });

  it('stores a message written with kafkajs that kcat reads back', { timeout: 60_000 }, async () => {
    const topic = uniqueTopic('roundtrip');
    // No partition count given: the broker's num.partitions (3) applies.
    expect(await admin.createTopics({ topics: [{ topic }], waitForLeaders: true })).toBe(true);
    created.push(topic);

    const meta = await admin.fetchTopicMetadata({ topics: [topic] });
    const partitions = meta.topics[0]?.partitions ?? [];
    expect(partitions.map((p) => p.partitionId).sort()).toEqual([0, 1, 2]);
    for (const p of partitions) expect(p.leader).toBeGreaterThanOrEqual(0);

    const key = `key-${randomUUID()}`;
    const value = `value-${randomUUID()}`;
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    try {
      const [ack] = await producer.send({
        topic,
        acks: -1,
        messages: [{ key, value, partition: 1, headers: { origin: 'kafkajs' } }],
      });
      expect(ack?.errorCode).toBe(0);
      expect(ack?.partition).toBe(1);
    } finally {
      await producer.disconnect();
    }

    // -e: exit at the end of every partition, so a missing message fails fast instead of hanging.
    const res = await kcat(['-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-J']);
    expect(res.code, res.stderr).toBe(0);
    const messages = res.stdout
      .split('\n')
      .filter((l) => l.trim().length > 0)
      .map((l) => JSON.parse(l) as KcatMessage);
    expect(messages).toHaveLength(1);
    const [msg] = messages;
    expect(msg?.topic).toBe(topic);
    expect(msg?.partition).toBe(1);
    expect(msg?.offset).toBe(0);
    expect(msg?.key).toBe(key);
    expect(msg?.payload).toBe(value);
    expect(msg?.headers).toEqual(['origin', 'kafkajs']);
  });

  it('reports the broker and does not create topics on first use', { timeout: 60_000 }, async () => {
    const list = await kcat(['-L', '-J']);
    expect(list.code, list.stderr).toBe(0);
    const metadata = JSON.parse(list.stdout) as { brokers: Array<{ id: number; name: string }> };
    expect(metadata.brokers).toHaveLength(1);
    expect(brokers).toContain(metadata.brokers[0]?.name);

    // The application creates its topics; producing to an unknown one must fail.
    const topic = uniqueTopic('absent');
    // librdkafka waits topic.metadata.propagation.max.ms (30 s) for a topic to appear.
    const produced = await kcat(['-P', '-t', topic, '-X', 'topic.metadata.propagation.max.ms=1000'], 'should-not-land\n');
    expect(produced.code).not.toBe(0);
    expect(produced.stderr).toMatch(/Unknown topic or partition/i);
    expect(await admin.listTopics()).not.toContain(topic);
  });
});
