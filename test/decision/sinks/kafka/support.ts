/**
 * Helpers for the Kafka sink tests: synthetic decision records, settings
 * pointing at the test broker, unique topics, and reading a topic back with
 * kafkajs and with kcat (an outside client).
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { loadSettings, type Settings } from '../../../../src/config/settings.ts';
import type { DecisionRecord } from '../../../../src/decision/record.ts';
import { uuidv7 } from '../../../../src/util/ids.ts';

export const BROKERS = process.env.PALISADE_KAFKA_BROKERS || '127.0.0.1:19092';

export function uniqueTopic(purpose: string): string {
  return `palisade-test-sink-${purpose}-${process.pid}-${randomUUID().slice(0, 8)}`;
}

export function testKafka(): Kafka {
  return new Kafka({ clientId: 'palisade-sink-test', brokers: BROKERS.split(','), logLevel: logLevel.NOTHING });
}

/** Settings for a sink on the test broker; topics unique to the test. */
export function sinkSettings(env: Record<string, string> = {}): Settings {
  return loadSettings({
    PALISADE_KAFKA_BROKERS: BROKERS,
    PALISADE_KAFKA_TOPIC_DECISIONS: uniqueTopic('decisions'),
    PALISADE_KAFKA_TOPIC_BLOCKLIST: uniqueTopic('blocklist'),
    PALISADE_KAFKA_TOPIC_ALERTS: uniqueTopic('alerts'),
    PALISADE_KAFKA_TOPIC_PARTITIONS: '3',
    ...env,
  });
}

/** A decision record for client `subject` (null = unauthenticated, keyed by IP). */
export function makeRecord(seq: number, subject: string | null, ip = '10.0.0.1'): DecisionRecord {
  const now = Date.now();
  return {
    id: uuidv7(now),
    requestId: `req-${seq}`,
    traceId: null,
    time: now,
    durationMs: 1.5,
    verdict: 'allow',
    decidedBy: 'forward',
    code: 'ALLOWED',
    rule: 'r1',
    wouldDeny: [],
    identity: subject
      ? { subject, methods: ['mtls'], spiffeId: subject, issuer: null, clientId: null, scopes: [], groups: [], claims: {}, tokenId: null, expiresAt: null }
      : null,
    client: { ip, port: 40000 + (seq % 1000), forwardedFor: [] },
    server: { ip: '127.0.0.1', port: 8443 },
    tls: null,
    request: { method: 'GET', path: `/items/${seq}`, host: 'svc', scheme: 'https', httpVersion: '1.1', userAgent: 'test', contentType: null, route: '/items/{id}', params: { id: String(seq) }, bytesIn: 0 },
    response: { status: 200, bytesOut: 10 },
    stages: [],
    upstreamMs: 0.5,
    policy: { name: 'p', version: '1', hash: 'h' },
    detail: null,
  };
}

/**
 * flush(), then waits until `n` records are delivered: flush() gives up after the sink's close
 * budget, which a busy shared machine can exceed.
 */
export async function delivered(sink: { flush(): Promise<void>; stats(): { delivered: number } }, n: number, timeoutMs = 60_000): Promise<void> {
  await sink.flush();
  const end = Date.now() + timeoutMs;
  while (sink.stats().delivered < n && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
}

export interface ReadMessage {
  readonly partition: number;
  readonly offset: number;
  readonly key: string | null;
  readonly value: string;
  readonly headers: Record<string, string>;
}

/** Reads every message of `topic` (all partitions) with a kafkajs consumer until `expect` messages or the timeout. */
export async function readTopic(topic: string, expect: number, timeoutMs = 30_000): Promise<ReadMessage[]> {
  const kafka = testKafka();
  const consumer = kafka.consumer({ groupId: `palisade-test-${randomUUID()}` });
  const out: ReadMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const headers: Record<string, string> = {};
        for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
        out.push({ partition, offset: Number(message.offset), key: message.key?.toString() ?? null, value: message.value?.toString() ?? '', headers });
        if (out.length >= expect) done();
      },
    });
    await Promise.race([finished, new Promise((r) => setTimeout(r, timeoutMs))]);
    // A little longer, so that messages beyond the expected count (duplicates) are seen too.
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    await consumer.disconnect();
  }
  return out;
}

export interface KcatMessage {
  topic: string;
  partition: number;
  offset: number;
  key: string | null;
  payload: string | null;
  headers?: string[] | null;
}

/** Reads the whole topic with kcat (-C -e -J): exits at the end of every partition. */
export function kcatRead(topic: string): Promise<KcatMessage[]> {
  return new Promise((resolve, reject) => {
    execFile('kcat', ['-b', BROKERS, '-C', '-t', topic, '-o', 'beginning', '-e', '-q', '-J'], { timeout: 60_000, maxBuffer: 512 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`kcat failed: ${err.message}\n${stderr}`));
      else resolve(stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as KcatMessage));
    });
  });
}

/** Total messages on a topic from its offsets (high watermark - low), without consuming. */
export async function topicCount(topic: string): Promise<number> {
  const admin = testKafka().admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
  } finally {
    await admin.disconnect();
  }
}

export async function deleteTopics(topics: readonly string[]): Promise<void> {
  const admin = testKafka().admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const mine = topics.filter((t) => existing.has(t));
    if (mine.length > 0) await admin.deleteTopics({ topics: mine });
  } catch {
    /* best effort cleanup */
  } finally {
    await admin.disconnect();
  }
}
