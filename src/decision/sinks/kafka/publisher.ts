/**
 * Publishes batches of encoded events to the decisions topic with kafkajs:
 * idempotent producer, acks=all, one request in flight per broker (kafkajs
 * keeps its idempotent sequence numbers right only then), compression.
 *
 * A failed send resets the producer: the next attempt gets a new producer id.
 * kafkajs does not bump the producer epoch after a failure, and resending
 * different batch boundaries under the old id can hit
 * OUT_OF_ORDER_SEQUENCE_NUMBER, which would wedge the stream; a new id cannot.
 * The price is at-least-once across failures: a batch the broker wrote but did
 * not acknowledge is sent again (consumers de-duplicate by event id).
 */
import type { Admin, Kafka, Message, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { compressionType, type Compression } from '../../../kafka/codecs.ts';
import { CachedDefaultPartitioner } from '../../../kafka/partitioner.ts';
import { ensureTopics, type TopicSpec } from '../../../kafka/topics.ts';
import type { SpoolEntry } from './spool.ts';

export type { Compression } from '../../../kafka/codecs.ts';

export interface PublisherOptions {
  readonly kafka: Kafka;
  readonly topic: string;
  /** Topics to create if missing before the first send (empty: assume they exist). */
  readonly ensure: readonly TopicSpec[];
  readonly compression: Compression;
  /** Broker-side wait for acks=all, milliseconds. */
  readonly ackTimeoutMs: number;
  readonly logger: Logger;
}

export interface PublishResult {
  /** Events the broker refused for good (too large): dropped and counted by the caller. */
  readonly rejected: number;
}

export interface Publisher {
  /** Resolves when every entry is acknowledged (or rejected for good); throws if the broker cannot be reached. */
  publish(entries: readonly SpoolEntry[]): Promise<PublishResult>;
  close(): Promise<void>;
}


/** A produce request stays below the broker's default max.message.bytes (1 MiB) before compression. */
const MAX_REQUEST_BYTES = 768 * 1024;
const HEADER_CONTENT_TYPE = 'application/json';

/** Walks a kafkajs error chain for a protocol error type. */
function errorType(err: unknown): string | null {
  for (let e = err as { type?: unknown; originalError?: unknown; cause?: unknown } | undefined, i = 0; e && i < 5; i++) {
    if (typeof e.type === 'string') return e.type;
    e = (e.originalError ?? e.cause) as typeof e;
  }
  return null;
}

const TOO_LARGE = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD']);

export function messageOf(e: SpoolEntry): Message {
  return { key: e.key, value: e.value, headers: { 'event-id': e.id, 'content-type': HEADER_CONTENT_TYPE } };
}

export function createPublisher(o: PublisherOptions): Publisher {
  // The codecs themselves (gzip level 1, zstd) are installed by src/kafka/client.ts.
  const compression = compressionType(o.compression);
  let producer: Producer | null = null;
  let topicsReady = o.ensure.length === 0;

  async function ready(): Promise<Producer> {
    if (!topicsReady) {
      const admin: Admin = o.kafka.admin();
      await admin.connect();
      try {
        await ensureTopics(admin, o.ensure, o.logger);
        topicsReady = true;
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    }
    if (!producer) {
      const p = o.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        // murmur2 of the key, as the Java client: a key lands on the same partition whoever produces it
        // (kafkajs's DefaultPartitioner, with each recent key's answer remembered).
        createPartitioner: CachedDefaultPartitioner,
        allowAutoTopicCreation: false,
        // Few retries inside kafkajs: when the broker stays away the sink spools and retries itself.
        retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 },
      });
      try {
        await p.connect();
      } catch (err) {
        await p.disconnect().catch(() => undefined);
        throw err;
      }
      producer = p;
    }
    return producer;
  }

  async function reset(): Promise<void> {
    const p = producer;
    producer = null;
    if (p) await p.disconnect().catch(() => undefined);
  }

  async function send(p: Producer, messages: Message[]): Promise<void> {
    await p.send({ topic: o.topic, messages, acks: -1, timeout: o.ackTimeoutMs, compression });
  }

  /** Sends one request; a refused-as-too-large request is split until single events can be dropped. */
  async function sendOrSplit(p: Producer, entries: readonly SpoolEntry[]): Promise<number> {
    try {
      await send(p, entries.map(messageOf));
      return 0;
    } catch (err) {
      const type = errorType(err);
      if (type === null || !TOO_LARGE.has(type)) throw err;
      if (entries.length === 1) {
        o.logger.error({ eventId: entries[0]!.id, bytes: Buffer.byteLength(entries[0]!.value), reason: type }, 'decision event refused by the broker; dropped');
        return 1;
      }
      const half = Math.ceil(entries.length / 2);
      return (await sendOrSplit(p, entries.slice(0, half))) + (await sendOrSplit(p, entries.slice(half)));
    }
  }

  return {
    async publish(entries) {
      let rejected = 0;
      try {
        const p = await ready();
        let chunk: SpoolEntry[] = [];
        let bytes = 0;
        for (const e of entries) {
          const n = e.value.length + e.id.length + (e.key?.length ?? 0) + 64;
          if (chunk.length > 0 && bytes + n > MAX_REQUEST_BYTES) {
            rejected += await sendOrSplit(p, chunk);
            chunk = [];
            bytes = 0;
          }
          chunk.push(e);
          bytes += n;
        }
        if (chunk.length > 0) rejected += await sendOrSplit(p, chunk);
        return { rejected };
      } catch (err) {
        await reset();
        throw err;
      }
    },
    close: reset,
  };
}
