// src/kafka/encoder-speed.ts rewrites how kafkajs's protocol Encoder writes varints, varlongs and
// grows its buffer. The bytes must not change: checked against the protocol's known encodings,
// against an untouched copy of kafkajs's own Encoder (loaded fresh, beside the patched one),
// against kafkajs's decoder, and on a whole record batch. The real broker's check of the same
// bytes (CRC, record parsing) runs in every Kafka sink test (test/decision/sinks/kafka/).
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { speedUpKafkajsEncoder } from '../../src/kafka/encoder-speed.ts';
import '../../src/kafka/client.ts';

const require = createRequire(import.meta.url);

interface Enc {
  buffer: Buffer;
  writeVarInt(v: number): Enc;
  writeUVarInt(v: number): Enc;
  writeVarLong(v: unknown): Enc;
  writeVarIntBytes(v: unknown): Enc;
  writeString(v: string): Enc;
  writeBuffer(v: Buffer): Enc;
  writeInt32(v: number): Enc;
}
type EncoderClass = (new (size?: number) => Enc) & { sizeOfVarLong(v: unknown): number; sizeOfVarInt(v: number): number };

const ENCODER = require.resolve('kafkajs/src/protocol/encoder.js');
const Patched = require(ENCODER) as EncoderClass;

/** A second, untouched instance of kafkajs's Encoder module: the reference. */
function pristineEncoder(): EncoderClass {
  const cached = require.cache[ENCODER];
  delete require.cache[ENCODER];
  try {
    return require(ENCODER) as EncoderClass;
  } finally {
    require.cache[ENCODER] = cached;
  }
}
const Original = pristineEncoder();
const Decoder = require('kafkajs/src/protocol/decoder.js') as new (b: Buffer) => { readVarInt(): number; readVarLong(): { toString(): string } };
const Long = require('kafkajs/src/utils/long.js') as { fromString(s: string): unknown; fromNumber(n: number): unknown };

const hex = (b: Buffer) => b.toString('hex');

describe('kafkajs Encoder, faster writes', () => {
  it('is applied (once; a second call is a no-op) and is not the reference copy', () => {
    expect(speedUpKafkajsEncoder()).toBe(true);
    expect(speedUpKafkajsEncoder()).toBe(true);
    expect(Patched.prototype.writeUVarInt).not.toBe(Original.prototype.writeUVarInt);
  });

  it('writes the protocol\'s known zig-zag varint bytes', () => {
    const known: [number, string][] = [
      [0, '00'], [-1, '01'], [1, '02'], [63, '7e'], [-64, '7f'], [64, '8001'], [300, 'd804'],
      [2147483647, 'feffffff0f'], [-2147483648, 'ffffffff0f'],
    ];
    for (const [v, bytes] of known) {
      expect(hex(new Patched().writeVarInt(v).buffer), `varint ${v}`).toBe(bytes);
      expect(hex(new Patched().writeVarLong(v).buffer), `varlong ${v}`).toBe(bytes);
    }
  });

  it('matches kafkajs\'s own Encoder byte for byte, and its decoder reads the values back', () => {
    const values = [0, 1, -1, 2, 127, 128, -128, 255, 16383, 16384, -16385, 1 << 20, 2 ** 28, -(2 ** 28), 2 ** 31 - 1, -(2 ** 31)];
    for (let i = 0; i < 2000; i++) values.push(Math.floor((Math.random() - 0.5) * 2 ** 32));
    for (const v of values) {
      const mine = new Patched().writeVarInt(v).writeVarLong(v).writeUVarInt(Math.abs(v) % 2 ** 31).buffer;
      const theirs = new Original().writeVarInt(v).writeVarLong(v).writeUVarInt(Math.abs(v) % 2 ** 31).buffer;
      expect(hex(mine), String(v)).toBe(hex(theirs));
      expect(Patched.sizeOfVarLong(v)).toBe(Original.sizeOfVarLong(v));
      const d = new Decoder(mine);
      expect(d.readVarInt()).toBe(v);
      expect(d.readVarLong().toString()).toBe(String(v));
    }
  });

  it('leaves 64-bit values (numbers beyond 32 bits, Long objects) to kafkajs\'s own code, same bytes', () => {
    const big = [2 ** 31, -(2 ** 31) - 1, 2 ** 40 + 5, -(2 ** 45), Number.MAX_SAFE_INTEGER];
    for (const v of big) {
      expect(hex(new Patched().writeVarLong(v).buffer), String(v)).toBe(hex(new Original().writeVarLong(v).buffer));
      expect(Patched.sizeOfVarLong(v)).toBe(Original.sizeOfVarLong(v));
      expect(new Decoder(new Patched().writeVarLong(v).buffer).readVarLong().toString()).toBe(String(v));
    }
    const long = Long.fromString('-9223372036854775808');
    expect(hex(new Patched().writeVarLong(long).buffer)).toBe(hex(new Original().writeVarLong(long).buffer));
  });

  it('grows its buffer without exposing unwritten bytes', () => {
    const value = Buffer.alloc(5000, 0x61);
    const mine = new Patched(16).writeInt32(7).writeVarIntBytes(value).writeString('tail').writeBuffer(Buffer.from([1, 2, 3]));
    const theirs = new Original(16).writeInt32(7).writeVarIntBytes(value).writeString('tail').writeBuffer(Buffer.from([1, 2, 3]));
    expect(mine.buffer.length).toBe(theirs.buffer.length);
    expect(mine.buffer.equals(theirs.buffer)).toBe(true);
  });

  it('encodes a whole record batch (records with keys, values and headers) exactly as kafkajs did', async () => {
    // kafkajs's own Record and RecordBatch code (fresh copies: src/kafka/record-batch.ts replaces the
    // cached ones for produce requests), running on the patched Encoder.
    const fresh = (path: string) => {
      const p = require.resolve(path);
      const cached = require.cache[p];
      delete require.cache[p];
      try {
        return require(p) as unknown;
      } finally {
        require.cache[p] = cached;
      }
    };
    const Record = fresh('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (r: object) => Enc;
    const { RecordBatch } = fresh('kafkajs/src/protocol/recordBatch/v0/index.js') as { RecordBatch: (o: object) => Promise<Enc> };
    const records = Array.from({ length: 50 }, (_, i) =>
      Record({ offsetDelta: i, timestampDelta: i * 3, key: `client-${i % 7}`, value: JSON.stringify({ i, pad: 'x'.repeat(i * 40) }), headers: { 'event-id': `id-${i}`, 'content-type': 'application/json' } }),
    );
    const batch = (await RecordBatch({ records, firstTimestamp: 1_700_000_000_000, maxTimestamp: 1_700_000_000_147, producerId: Long.fromNumber(42), firstSequence: 9 })).buffer;
    // The same records through the reference Encoder: written field by field as kafkajs's Record does.
    const ref = new Original();
    for (const [i, r] of records.entries()) {
      const key = `client-${i % 7}`;
      const value = JSON.stringify({ i, pad: 'x'.repeat(i * 40) });
      const headers = new Original().writeVarInt(2)
        .writeVarInt(8).writeBuffer(Buffer.from('event-id')).writeVarIntBytes(`id-${i}`)
        .writeVarInt(12).writeBuffer(Buffer.from('content-type')).writeVarIntBytes('application/json').buffer;
      const body = Buffer.concat([Buffer.from([0]), new Original().writeVarLong(i * 3).writeVarInt(i).writeVarIntBytes(key).writeVarIntBytes(value).buffer, headers]);
      ref.writeVarInt(body.length).writeBuffer(body);
      expect(r.buffer.equals(Buffer.concat([new Original().writeVarInt(body.length).buffer, body]))).toBe(true);
    }
    // The batch ends with the records, after its 61-byte header (with the CRC over the rest).
    expect(batch.subarray(batch.length - ref.buffer.length).equals(ref.buffer)).toBe(true);
  });
});
