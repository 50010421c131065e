/**
 * Cheaper byte writing in kafkajs 2.2.4's protocol Encoder, applied once when
 * src/kafka/client.ts loads. The bytes on the wire are the same; only how they are
 * written changes (test/kafka/encoder-speed.test.ts checks them against the protocol's
 * known encodings and kafkajs's own decoder).
 *
 * Why: a produce request of N decision events makes kafkajs build N record encoders,
 * 2N header encoders, and write about 10 varints per record. Profiled in the decision
 * thread (bench/kafka.ts --only rate, --cpu-prof), three things took most of that time
 * and the garbage collector's work after it:
 *   - writeUVarInt built a JS array and a Buffer (Buffer.from) for every varint;
 *   - writeVarLong / sizeOfVarLong did 64-bit arithmetic through Long objects (about ten
 *     allocations per record) for the timestamp delta, which is a small number;
 *   - ensureAvailable grew buffers with Buffer.alloc, which zero-fills memory that is
 *     overwritten at once (every record's 512-byte buffer grows to hold its ~2 KB value).
 * Here a varint is written straight into the encoder's buffer, a varlong that fits in
 * 32 bits takes the varint path (zig-zag and base-128 bytes are then identical), and a
 * grown buffer is not zero-filled (an Encoder only ever exposes bytes below its offset:
 * `buffer` and `size()` stop there, and every write goes through ensureAvailable first).
 * kafkajs is in maintenance mode, so the version is pinned by the lock file, and this
 * patch refuses to apply (returns false, kafkajs's own code stays) if the methods it
 * replaces are not there.
 */
import { createRequire } from 'node:module';

interface EncoderState {
  buf: Buffer;
  offset: number;
  ensureAvailable(length: number): void;
  writeVarInt(value: number): EncoderState;
}

interface EncoderClass {
  prototype: Record<string, unknown>;
  sizeOfVarInt(value: number): number;
  sizeOfVarLong(value: unknown): number;
  nextPowerOfTwo(value: number): number;
}

/** Varlongs in this range are encoded by the 32-bit varint path, byte for byte the same. */
const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;

function fitsInt32(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX;
}

let applied = false;

/** True once the patch is in place (idempotent); false when this kafkajs has not the expected Encoder. */
export function speedUpKafkajsEncoder(): boolean {
  if (applied) return true;
  const require = createRequire(import.meta.url);
  const Encoder = require('kafkajs/src/protocol/encoder.js') as EncoderClass | undefined;
  const proto = Encoder?.prototype;
  if (
    !Encoder || !proto ||
    typeof proto['ensureAvailable'] !== 'function' || typeof proto['writeUVarInt'] !== 'function' ||
    typeof proto['writeVarLong'] !== 'function' || typeof proto['writeVarInt'] !== 'function' ||
    typeof Encoder.sizeOfVarLong !== 'function' || typeof Encoder.sizeOfVarInt !== 'function' || typeof Encoder.nextPowerOfTwo !== 'function'
  ) {
    return false;
  }
  const nextPowerOfTwo = Encoder.nextPowerOfTwo.bind(Encoder);
  const sizeOfVarInt = Encoder.sizeOfVarInt.bind(Encoder);
  const sizeOfVarLong = Encoder.sizeOfVarLong.bind(Encoder);
  const writeVarLong = proto['writeVarLong'] as (this: EncoderState, value: unknown) => EncoderState;

  proto['ensureAvailable'] = function ensureAvailable(this: EncoderState, length: number): void {
    if (this.offset + length > this.buf.length) {
      const grown = Buffer.allocUnsafe(nextPowerOfTwo(this.offset + length));
      this.buf.copy(grown, 0, 0, this.offset);
      this.buf = grown;
    }
  };
  proto['writeUVarInt'] = function writeUVarInt(this: EncoderState, value: number): EncoderState {
    // At most 5 bytes for 32 bits. The loop is kafkajs's (unsigned 32-bit semantics).
    this.ensureAvailable(5);
    const buf = this.buf;
    let offset = this.offset;
    while ((value & 0xffffff80) !== 0) {
      buf[offset++] = (value & 0x7f) | 0x80;
      value >>>= 7;
    }
    buf[offset++] = value & 0x7f;
    this.offset = offset;
    return this;
  };
  proto['writeVarLong'] = function fastWriteVarLong(this: EncoderState, value: unknown): EncoderState {
    return fitsInt32(value) ? this.writeVarInt(value) : writeVarLong.call(this, value);
  };
  Encoder.sizeOfVarLong = (value: unknown): number => (fitsInt32(value) ? sizeOfVarInt(value) : sizeOfVarLong(value));
  applied = true;
  return true;
}
