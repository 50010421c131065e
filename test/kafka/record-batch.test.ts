// src/kafka/record-batch.ts writes kafkajs's produce record batches itself (records into one
// buffer). The bytes must be kafkajs's: compared here with kafkajs's own Record and RecordBatch
// (an untouched copy of their modules, loaded fresh beside the replaced ones) over many random
// batches: keys and values as strings (with non-ASCII text), Buffers or null, headers with single,
// repeated and Buffer values, timestamp deltas in and beyond 32 bits, every compression, producer
// fields and the transactional flag. The real broker's own check of these bytes (CRC, record
// parsing, idempotent sequence numbers) runs in every Kafka test that produces (test/kafka/codecs,
// test/decision/sinks/kafka/).
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import '../../src/kafka/client.ts';
import { speedUpKafkajsRecordBatches } from '../../src/kafka/record-batch.ts';

const require = createRequire(import.meta.url);
const RECORD = require.resolve('kafkajs/src/protocol/recordBatch/record/v0/index.js');
const BATCH = require.resolve('kafkajs/src/protocol/recordBatch/v0/index.js');

type RecordFn = (r: object) => unknown;
type BatchFn = (b: object) => Promise<{ buffer: Buffer }>;

/** Fresh, untouched instances of kafkajs's Record and RecordBatch modules: the reference. */
function pristine(): { Record: RecordFn; RecordBatch: BatchFn } {
  const saved = [RECORD, BATCH].map((p) => [p, require.cache[p]] as const);
  for (const [p] of saved) delete require.cache[p];
  try {
    return { Record: require(RECORD) as RecordFn, RecordBatch: (require(BATCH) as { RecordBatch: BatchFn }).RecordBatch };
  } finally {
    for (const [p, m] of saved) require.cache[p] = m;
  }
}
const reference = pristine();
const fast = { Record: require(RECORD) as RecordFn, RecordBatch: (require(BATCH) as { RecordBatch: BatchFn }).RecordBatch };
const Long = require('kafkajs/src/utils/long.js') as { fromNumber(n: number): unknown; fromString(s: string): unknown };
const { Types } = require('kafkajs/src/protocol/message/compression/index.js') as { Types: Record<string, number> };

/** A small deterministic random source, so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

function randomMessage(r: () => number, i: number): Record<string, unknown> {
  const text = (n: number) => Array.from({ length: n }, () => 'aé€😀{"x":1}'[Math.floor(r() * 10)]).join('');
  const bytesOf = (n: number) => (r() < 0.5 ? text(n) : Buffer.from(text(n)));
  const key = r() < 0.15 ? null : r() < 0.2 ? undefined : bytesOf(Math.floor(r() * 40));
  const value = r() < 0.05 ? null : bytesOf(Math.floor(r() * 3000));
  const headers: Record<string, unknown> = {};
  const nh = Math.floor(r() * 4);
  for (let h = 0; h < nh; h++) headers[`h-${h}-${text(3)}`] = r() < 0.3 ? [bytesOf(5), bytesOf(0)] : bytesOf(Math.floor(r() * 50));
  const timestampDelta = r() < 0.1 ? Math.floor(r() * 2 ** 40) : r() < 0.1 ? -Math.floor(r() * 1000) : Math.floor(r() * 5000);
  return { key, value, headers, offsetDelta: i, timestampDelta };
}

describe('kafkajs record batches written in one buffer', () => {
  it('is in place for kafkajs\'s produce requests', () => {
    expect(speedUpKafkajsRecordBatches()).toBe(true);
    expect(fast.Record).not.toBe(reference.Record);
    expect(fast.RecordBatch).not.toBe(reference.RecordBatch);
  });

  for (const compression of ['None', 'GZIP', 'ZSTD'] as const) {
    it(`writes the same bytes as kafkajs, compression ${compression}`, async () => {
      const r = rng(compression.length * 7919);
      for (let round = 0; round < 60; round++) {
        const messages = Array.from({ length: 1 + Math.floor(r() * 40) }, (_, i) => randomMessage(r, i));
        const fields = {
          compression: Types[compression],
          firstTimestamp: 1_700_000_000_000 + round,
          maxTimestamp: 1_700_000_000_999,
          producerId: Long.fromNumber(1000 + round),
          producerEpoch: round % 3,
          firstSequence: round * 50,
          transactional: round % 4 === 0,
          lastOffsetDelta: messages.length - 1,
          ...(round % 5 === 0 ? { partitionLeaderEpoch: 3, firstOffset: Long.fromString('12345678901') } : {}),
        };
        const mine = await fast.RecordBatch({ ...fields, records: messages.map((m) => fast.Record(m)) });
        const theirs = await reference.RecordBatch({ ...fields, records: messages.map((m) => reference.Record(m)) });
        expect(mine.buffer.equals(theirs.buffer), `round ${round}`).toBe(true);
      }
    });
  }

  it('an empty batch and kafkajs\'s defaults: the same bytes', async () => {
    const at = Date.now();
    // Timestamps given (the default is "now", which would differ between the two calls).
    const mine = await fast.RecordBatch({ firstTimestamp: at, maxTimestamp: at, records: [] });
    const theirs = await reference.RecordBatch({ firstTimestamp: at, maxTimestamp: at, records: [] });
    expect(mine.buffer.equals(theirs.buffer)).toBe(true);
  });
});
