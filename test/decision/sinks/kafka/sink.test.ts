// The Kafka sink against the real broker: every record once, keyed per client and
// in order per key, headers, topics created with their settings; an unreachable
// broker spools to disk and the next sink replays the spool before newer events.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kafkajs from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import type { Settings } from '../../../../src/config/settings.ts';
import { createKafkaSink } from '../../../../src/decision/sinks/kafka/index.ts';
import { createLogger } from '../../../../src/log/logger.ts';
import { createTopic } from '../../../support/kafka-topics.ts';
import { deleteTopics, delivered, makeRecord, readTopic, sinkSettings, testKafka, type ReadMessage } from './support.ts';

const logger = createLogger({ level: 'silent' });
const topics: string[] = [];
const dirs: string[] = [];
function settingsFor(env: Record<string, string> = {}): Settings {
  const s = sinkSettings(env);
  topics.push(s.kafkaTopicDecisions, s.kafkaTopicBlocklist, s.kafkaTopicAlerts);
  return s;
}
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'palisade-kafka-spool-'));
  dirs.push(d);
  return d;
}
afterAll(async () => {
  await deleteTopics(topics);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** seq of each message, grouped by key, in topic order (per partition; a key has one partition). */
function sequencesByKey(messages: readonly ReadMessage[]): Map<string, number[]> {
  const byKey = new Map<string, number[]>();
  const sorted = [...messages].sort((a, b) => a.partition - b.partition || a.offset - b.offset);
  for (const m of sorted) {
    const seq = Number(/"req-(\d+)"/.exec(m.value)?.[1] ?? /\/items\/(\d+)/.exec(m.value)?.[1]);
    const list = byKey.get(m.key ?? '') ?? [];
    list.push(seq);
    byKey.set(m.key ?? '', list);
  }
  return byKey;
}

const ascending = (xs: readonly number[]) => xs.every((x, i) => i === 0 || xs[i - 1]! < x);

describe('Kafka decision sink (real broker)', () => {
  it('publishes every record once, keyed by identity or IP, in order per key, with id and content-type headers', async () => {
    const s = settingsFor({ PALISADE_KAFKA_BATCH_SIZE: '100', PALISADE_KAFKA_LINGER_MS: '5' });
    const sink = await createKafkaSink(s, logger);
    const n = 3000;
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const r = i % 10 === 9 ? makeRecord(i, null, `10.1.0.${i % 3}`) : makeRecord(i, `spiffe://test/client-${i % 7}`);
      ids.push(r.id);
      sink.write(r);
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    await delivered(sink, n);
    expect(sink.stats()).toMatchObject({ accepted: n, delivered: n, dropped: 0, buffered: 0, spoolBytes: 0, connected: true });
    await sink.close();

    const messages = await readTopic(s.kafkaTopicDecisions, n);
    expect(messages).toHaveLength(n);
    expect(new Set(messages.map((m) => m.headers['event-id']))).toEqual(new Set(ids));
    for (const m of messages) {
      expect(m.headers['content-type']).toBe('application/json');
      expect(() => JSON.parse(m.value)).not.toThrow();
      expect(m.value).toContain(m.headers['event-id']!); // the event carries its own uid
    }
    const byKey = sequencesByKey(messages);
    expect([...byKey.keys()].sort()).toEqual([...Array.from({ length: 7 }, (_, i) => `spiffe://test/client-${i}`), '10.1.0.0', '10.1.0.1', '10.1.0.2'].sort());
    for (const [, seqs] of byKey) expect(ascending(seqs)).toBe(true);
    // One key, one partition.
    const partitionsOf = new Map<string, Set<number>>();
    for (const m of messages) partitionsOf.set(m.key!, (partitionsOf.get(m.key!) ?? new Set()).add(m.partition));
    for (const [, ps] of partitionsOf) expect(ps.size).toBe(1);
  });

  it('creates the topics with their settings: decisions by time, block list compacted, alerts by time', async () => {
    const s = settingsFor({ PALISADE_KAFKA_TOPIC_PARTITIONS: '4' });
    const sink = await createKafkaSink(s, logger);
    sink.write(makeRecord(1, 'spiffe://test/a'));
    await delivered(sink, 1);
    await sink.close();
    const admin = testKafka().admin();
    await admin.connect();
    try {
      const meta = await admin.fetchTopicMetadata({ topics: [s.kafkaTopicDecisions, s.kafkaTopicBlocklist, s.kafkaTopicAlerts] });
      const partitions = Object.fromEntries(meta.topics.map((t) => [t.name, t.partitions.length]));
      expect(partitions).toEqual({ [s.kafkaTopicDecisions]: 4, [s.kafkaTopicBlocklist]: 1, [s.kafkaTopicAlerts]: 4 });
      const res = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [s.kafkaTopicDecisions, s.kafkaTopicBlocklist, s.kafkaTopicAlerts].map((name) => ({ type: kafkajs.ConfigResourceTypes.TOPIC, name, configNames: ['cleanup.policy', 'retention.ms'] })),
      });
      const conf = Object.fromEntries(res.resources.map((r) => [r.resourceName, Object.fromEntries(r.configEntries.map((e) => [e.configName, e.configValue]))]));
      expect(conf[s.kafkaTopicDecisions]).toEqual({ 'cleanup.policy': 'delete', 'retention.ms': '604800000' });
      expect(conf[s.kafkaTopicBlocklist]?.['cleanup.policy']).toBe('compact');
      expect(conf[s.kafkaTopicAlerts]).toEqual({ 'cleanup.policy': 'delete', 'retention.ms': String(30 * 24 * 3600 * 1000) });
    } finally {
      await admin.disconnect();
    }
  });

  it('spools while the broker is unreachable; the next sink on the same spool replays it before newer events', async () => {
    const spoolDir = tempDir();
    const good = settingsFor({ PALISADE_SPOOL_DIR: spoolDir, PALISADE_KAFKA_LINGER_MS: '5' });
    // Same topics and spool, but a port nobody listens on: the broker is "down".
    const down = { ...good, kafkaBrokers: '127.0.0.1:1', kafkaConnectTimeoutMs: 300 };
    const first = await createKafkaSink(down, logger);
    const n = 1200;
    for (let i = 0; i < n; i++) {
      first.write(makeRecord(i, `spiffe://test/c${i % 5}`));
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 2));
    }
    await first.flush();
    const spooled = first.stats();
    expect(spooled).toMatchObject({ accepted: n, delivered: 0, dropped: 0, buffered: 0, connected: false });
    expect(spooled.spoolBytes).toBeGreaterThan(0);
    await first.close();
    expect(readdirSync(spoolDir).some((f) => f.startsWith('seg-'))).toBe(true);

    const second = await createKafkaSink(good, logger);
    for (let i = n; i < n + 300; i++) second.write(makeRecord(i, `spiffe://test/c${i % 5}`));
    await second.flush();
    const deadline = Date.now() + 30_000;
    while (second.stats().spoolBytes > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await second.close();
    expect(second.stats()).toMatchObject({ accepted: 300, delivered: n + 300, dropped: 0, spoolBytes: 0 });
    expect(readdirSync(spoolDir).filter((f) => f.startsWith('seg-'))).toEqual([]);

    const messages = await readTopic(good.kafkaTopicDecisions, n + 300);
    expect(messages).toHaveLength(n + 300);
    const byKey = sequencesByKey(messages);
    expect(byKey.size).toBe(5);
    for (const [, seqs] of byKey) {
      expect(seqs).toHaveLength((n + 300) / 5);
      expect(ascending(seqs)).toBe(true); // spooled (older) events first, then the new ones
    }
  });

  it('a broker that accepts connections but never answers counts as down: events spill to the spool, none lost', async () => {
    // A black hole on a loopback port: TCP connects, no Kafka response ever comes.
    const sockets: Socket[] = [];
    const hole = createServer((sock) => sockets.push(sock.on('error', () => undefined)));
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', r));
    const spoolDir = tempDir();
    const s = settingsFor({ PALISADE_SPOOL_DIR: spoolDir, PALISADE_KAFKA_BUFFER_EVENTS: '1000', PALISADE_KAFKA_LINGER_MS: '5' });
    const sink = await createKafkaSink({ ...s, kafkaBrokers: `127.0.0.1:${(hole.address() as { port: number }).port}`, kafkaRequestTimeoutMs: 300, kafkaConnectTimeoutMs: 300 }, logger);
    try {
      for (let i = 0; i < 2000; i++) {
        sink.write(makeRecord(i, `spiffe://test/slow${i % 3}`));
        if (i % 50 === 49) await new Promise((r) => setTimeout(r, 5));
      }
      // The first produce waits for kafkajs's request timeouts; then everything goes to disk.
      const deadline = Date.now() + 30_000;
      while ((sink.stats().connected || sink.stats().buffered > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const st = sink.stats();
      expect(st).toMatchObject({ accepted: 2000, delivered: 0, dropped: 0, buffered: 0, connected: false });
      expect(st.spoolBytes).toBeGreaterThan(0);
    } finally {
      await sink.close();
      for (const sock of sockets) sock.destroy();
      await new Promise<void>((r) => hole.close(() => r()));
    }
    const lines = readdirSync(spoolDir)
      .filter((f) => f.startsWith('seg-'))
      .flatMap((f) => readFileSync(join(spoolDir, f), 'utf8').split('\n').filter(Boolean));
    expect(lines).toHaveLength(2000);
  });

  it('an event the broker refuses as too large is dropped and counted; the rest goes through, in order', async () => {
    const s = settingsFor({ PALISADE_KAFKA_COMPRESSION: 'none', PALISADE_KAFKA_LINGER_MS: '5' });
    // The topic exists already, with a small max.message.bytes: a batch is too large, and so is one event.
    const admin = testKafka().admin();
    await admin.connect();
    await createTopic(admin, { topic: s.kafkaTopicDecisions, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '6000' }] });
    await admin.disconnect();
    const sink = await createKafkaSink(s, logger);
    for (let i = 0; i < 20; i++) {
      const r = makeRecord(i, 'spiffe://test/big');
      sink.write(i === 7 ? { ...r, request: { ...r.request, userAgent: 'x'.repeat(12_000) } } : r);
    }
    const deadline = Date.now() + 30_000;
    while (sink.stats().delivered + sink.stats().dropped < 20 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(sink.stats()).toMatchObject({ accepted: 20, delivered: 19, dropped: 1, spoolBytes: 0 });
    await sink.close();
    const messages = await readTopic(s.kafkaTopicDecisions, 19);
    expect(messages).toHaveLength(19);
    expect([...sequencesByKey(messages).values()][0]).toEqual([...Array.from({ length: 7 }, (_, i) => i), ...Array.from({ length: 12 }, (_, i) => i + 8)]);
  });

  it('without a spool, counts what the memory buffer cannot hold while the broker is unreachable', async () => {
    const s = settingsFor({ PALISADE_KAFKA_BUFFER_EVENTS: '100', PALISADE_SHUTDOWN_GRACE_MS: '1000' });
    const sink = await createKafkaSink({ ...s, kafkaBrokers: '127.0.0.1:1', kafkaConnectTimeoutMs: 200 }, logger);
    for (let i = 0; i < 250; i++) sink.write(makeRecord(i, 'spiffe://test/x'));
    const before = sink.stats();
    expect(before.accepted).toBe(250);
    expect(before.dropped).toBe(150);
    expect(before.buffered).toBe(100);
    await sink.close();
    // Nothing could be delivered and nothing can wait on disk: every record is accounted as dropped.
    expect(sink.stats()).toMatchObject({ accepted: 250, delivered: 0, dropped: 250, buffered: 0 });
  });
});
