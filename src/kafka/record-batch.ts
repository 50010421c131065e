/**
 * kafkajs 2.2.4's produce requests with their records written into one buffer, applied
 * once when src/kafka/client.ts loads, before any produce request exists. The bytes
 * on the wire are kafkajs's (test/kafka/record-batch.test.ts compares them with
 * kafkajs's own encoder over many batches); only how they are built changes.
 *
 * Why: kafkajs builds each record as an Encoder of its own (a zero-filled 512-byte
 * buffer grown to hold the ~1-2 KB event, then copied again into the batch), plus one
 * Encoder per header, and the batch's buffer grows by doubling and copying. Profiled
 * in the decision thread, that record building and the garbage collection after it were
 * the largest part of the Kafka sink's CPU per event (docs/kafka.md). Here `Record`
 * only notes the fields, and `RecordBatch` measures every record first, allocates the
 * records' bytes once and writes them in place; the batch header's fields (timestamps,
 * producer id and epoch, sequence) are still written by kafkajs's Encoder, compression is
 * still kafkajs's codec lookup (src/kafka/codecs.ts's codecs), and the CRC-32C is
 * src/kafka/crc32c.ts's (eight bytes per step instead of one).
 *
 * How: kafkajs's produce request modules (produce/v3/request.js, which v4-v7 reuse)
 * are loaded at the first produce request and take `Record` and `RecordBatch` from
 * the module cache then; both are replaced before that, together. If a produce request
 * module is already loaded (something produced before this ran), nothing is replaced
 * and kafkajs's own encoding stays (returns false).
 */
import { createRequire } from 'node:module';
import { crc32c } from './crc32c.ts';

const require = createRequire(import.meta.url);

type HeaderValue = string | Buffer | null | undefined;
type Bytes = string | Buffer | null | undefined;

interface RecordInput {
  readonly offsetDelta?: number;
  readonly timestampDelta?: number;
  readonly key?: Bytes;
  readonly value?: Bytes;
  readonly headers?: Readonly<Record<string, HeaderValue | readonly HeaderValue[]>>;
}

/** What `Record` returns here: the fields, for RecordBatch to write. */
interface PendingRecord {
  readonly offsetDelta: number;
  readonly timestampDelta: number;
  readonly key: Bytes;
  readonly value: Bytes;
  readonly headers: readonly (readonly [string, HeaderValue])[];
}

interface KafkajsEncoder {
  buf: Buffer;
  offset: number;
  readonly buffer: Buffer;
  size(): number;
  writeInt8(v: number): KafkajsEncoder;
  writeInt16(v: number): KafkajsEncoder;
  writeInt32(v: number): KafkajsEncoder;
  writeUInt32(v: number): KafkajsEncoder;
  writeInt64(v: unknown): KafkajsEncoder;
  writeVarLong(v: unknown): KafkajsEncoder;
  writeBytes(v: Buffer): KafkajsEncoder;
  writeBuffer(v: Buffer): KafkajsEncoder;
  writeEncoder(v: KafkajsEncoder): KafkajsEncoder;
}
type EncoderClass = new (size?: number) => KafkajsEncoder;

interface BatchInput {
  readonly compression?: number;
  readonly firstOffset?: unknown;
  readonly firstTimestamp?: unknown;
  readonly maxTimestamp?: unknown;
  readonly partitionLeaderEpoch?: number;
  readonly lastOffsetDelta?: number;
  readonly transactional?: boolean;
  readonly producerId?: unknown;
  readonly producerEpoch?: number;
  readonly firstSequence?: number;
  readonly records?: readonly PendingRecord[];
}

const INT32_MIN = -0x80000000;
const INT32_MAX = 0x7fffffff;
const MAGIC_BYTE = 2;
/** firstOffset 8, length 4, partitionLeaderEpoch 4, magic 1, CRC 4. */
const PREFIX_BYTES = 21;
/** attributes 2, lastOffsetDelta 4, firstTimestamp 8, maxTimestamp 8, producerId 8, producerEpoch 2, firstSequence 4, record count 4. */
const HEADER_BYTES = 40;
const TRANSACTIONAL_MASK = 16;

/** Bytes of the zig-zag varint of a 32-bit integer. */
function varIntSize(value: number): number {
  let v = ((value << 1) ^ (value >> 31)) >>> 0;
  let n = 1;
  while (v >= 0x80) {
    n++;
    v >>>= 7;
  }
  return n;
}

function writeVarInt(buf: Buffer, offset: number, value: number): number {
  let v = ((value << 1) ^ (value >> 31)) >>> 0;
  while (v >= 0x80) {
    buf[offset++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[offset++] = v;
  return offset;
}

function byteLength(value: string | Buffer): number {
  return typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : value.length;
}

/** A value kafkajs writes as bytes: null/undefined as length -1, a Buffer raw, anything else as its UTF-8 string. */
function asBytes(value: unknown): string | Buffer | null {
  if (value == null) return null;
  return Buffer.isBuffer(value) ? value : String(value);
}

function writeBytes(buf: Buffer, offset: number, value: string | Buffer | null, length: number): number {
  if (value === null) return writeVarInt(buf, offset, -1);
  offset = writeVarInt(buf, offset, length);
  if (typeof value === 'string') buf.write(value, offset, length, 'utf8');
  else value.copy(buf, offset);
  return offset + length;
}

function fitsInt32(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX;
}

export function createFastRecordBatch(Encoder: EncoderClass, crc32C: (b: Buffer) => number, lookupCodec: (type: number) => { compress(e: KafkajsEncoder): Promise<Buffer> } | null) {
  /** kafkajs's varlong bytes for the rare timestamp delta outside 32 bits. */
  const varLongBytes = (v: unknown): Buffer => new Encoder().writeVarLong(v).buffer;

  function Record(r: RecordInput): PendingRecord {
    const headers: (readonly [string, HeaderValue])[] = [];
    const h = r.headers ?? {};
    for (const k of Object.keys(h)) {
      const v = h[k];
      if (Array.isArray(v)) for (const x of v as readonly HeaderValue[]) headers.push([k, x]);
      else headers.push([k, v as HeaderValue]);
    }
    return { offsetDelta: r.offsetDelta ?? 0, timestampDelta: r.timestampDelta ?? 0, key: r.key, value: r.value, headers };
  }

  /** The records' bytes, written once into a buffer of their exact size, after `reserve` free bytes. */
  function encodeRecords(records: readonly PendingRecord[], reserve = 0): Buffer {
    const n = records.length;
    // Per record: key, value, then per header its key and value, with their byte lengths.
    const fields: (string | Buffer | null)[] = [];
    const lengths: number[] = [];
    const bodies = new Array<number>(n);
    let longDeltas: Map<number, Buffer> | null = null;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const r = records[i]!;
      let body = 1; // attributes
      if (fitsInt32(r.timestampDelta)) body += varIntSize(r.timestampDelta);
      else {
        const b = varLongBytes(r.timestampDelta);
        (longDeltas ??= new Map()).set(i, b);
        body += b.length;
      }
      body += varIntSize(r.offsetDelta);
      const key = asBytes(r.key);
      const value = asBytes(r.value);
      const klen = key === null ? -1 : byteLength(key);
      const vlen = value === null ? -1 : byteLength(value);
      fields.push(key, value);
      lengths.push(klen, vlen);
      body += (key === null ? 1 : varIntSize(klen) + klen) + (value === null ? 1 : varIntSize(vlen) + vlen);
      body += varIntSize(r.headers.length);
      for (const [hk, hv] of r.headers) {
        const k = String(hk);
        const hklen = Buffer.byteLength(k, 'utf8');
        const v = asBytes(hv);
        const hvlen = v === null ? -1 : byteLength(v);
        fields.push(k, v);
        lengths.push(hklen, hvlen);
        body += varIntSize(hklen) + hklen + (v === null ? 1 : varIntSize(hvlen) + hvlen);
      }
      bodies[i] = body;
      total += varIntSize(body) + body;
    }
    const buf = Buffer.allocUnsafe(reserve + total);
    let o = reserve;
    let f = 0;
    for (let i = 0; i < n; i++) {
      const r = records[i]!;
      o = writeVarInt(buf, o, bodies[i]!);
      buf[o++] = 0; // attributes: none used
      const long = longDeltas?.get(i);
      if (long) {
        long.copy(buf, o);
        o += long.length;
      } else o = writeVarInt(buf, o, r.timestampDelta);
      o = writeVarInt(buf, o, r.offsetDelta);
      // key, value, then each header's key and value
      const end = f + 2 + 2 * r.headers.length;
      o = writeBytes(buf, o, fields[f]!, lengths[f]!);
      o = writeBytes(buf, o, fields[f + 1]!, lengths[f + 1]!);
      o = writeVarInt(buf, o, r.headers.length);
      for (f += 2; f < end; f++) o = writeBytes(buf, o, fields[f]!, lengths[f]!);
    }
    if (o !== reserve + total) throw new Error(`record batch encoding wrote ${o - reserve} of ${total} bytes`);
    return buf;
  }

  /**
   * kafkajs's RecordBatch v0 (magic 2): same fields, defaults and bytes. Layout: firstOffset
   * (int64), length (int32), partitionLeaderEpoch (int32), magic (int8), CRC-32C (uint32) of
   * everything after it, then the 40-byte header (attributes .. record count) and the records,
   * compressed or not. Uncompressed, the records are written after room for the rest: no copy.
   */
  async function RecordBatch(b: BatchInput): Promise<KafkajsEncoder> {
    const compression = b.compression ?? 0;
    const records = b.records ?? [];
    const now = Date.now();
    const attributes = (compression & 0x07) | (b.transactional ? TRANSACTIONAL_MASK : 0);
    const header = new Encoder(64)
      .writeInt16(attributes)
      .writeInt32(b.lastOffsetDelta ?? 0)
      .writeInt64(b.firstTimestamp ?? now)
      .writeInt64(b.maxTimestamp ?? now)
      .writeInt64(b.producerId ?? -1)
      .writeInt16(b.producerEpoch ?? 0)
      .writeInt32(b.firstSequence ?? 0)
      .writeInt32(records.length).buffer;
    if (header.length !== HEADER_BYTES) throw new Error(`record batch header of ${header.length} bytes`);
    let buf: Buffer;
    if (compression === 0) buf = encodeRecords(records, PREFIX_BYTES + HEADER_BYTES);
    else {
      const codec = lookupCodec(compression);
      if (!codec) throw new Error(`kafka compression type ${compression} has no codec`);
      const raw = encodeRecords(records);
      const e = new Encoder(0);
      e.buf = raw;
      e.offset = raw.length;
      const compressed = await codec.compress(e);
      buf = Buffer.allocUnsafe(PREFIX_BYTES + HEADER_BYTES + compressed.length);
      compressed.copy(buf, PREFIX_BYTES + HEADER_BYTES);
    }
    header.copy(buf, PREFIX_BYTES);
    new Encoder(8).writeInt64(b.firstOffset ?? 0).buffer.copy(buf, 0);
    buf.writeInt32BE(buf.length - 12, 8);
    buf.writeInt32BE(b.partitionLeaderEpoch ?? 0, 12);
    buf.writeInt8(MAGIC_BYTE, 16);
    buf.writeUInt32BE(crc32C(buf.subarray(PREFIX_BYTES)), 17);
    const out = new Encoder(0);
    out.buf = buf;
    out.offset = buf.length;
    return out;
  }

  return { Record, RecordBatch, encodeRecords };
}

let applied: boolean | null = null;

/** Puts the fast Record and RecordBatch in place for kafkajs's produce requests; false when it is too late or kafkajs differs. */
export function speedUpKafkajsRecordBatches(): boolean {
  if (applied !== null) return applied;
  const produceRequest = require.resolve('kafkajs/src/protocol/requests/produce/v3/request.js');
  const recordPath = require.resolve('kafkajs/src/protocol/recordBatch/record/v0/index.js');
  if (require.cache[produceRequest]) return (applied = false);
  const Encoder = require('kafkajs/src/protocol/encoder.js') as EncoderClass;
  const { lookupCodec } = require('kafkajs/src/protocol/message/compression/index.js') as { lookupCodec: (t: number) => { compress(e: KafkajsEncoder): Promise<Buffer> } | null };
  const batchModule = require('kafkajs/src/protocol/recordBatch/v0/index.js') as { RecordBatch?: unknown; MAGIC_BYTE?: unknown };
  require(recordPath);
  const recordModule = require.cache[recordPath];
  if (typeof Encoder !== 'function' || typeof lookupCodec !== 'function' || typeof batchModule.RecordBatch !== 'function' || batchModule.MAGIC_BYTE !== MAGIC_BYTE || !recordModule) {
    return (applied = false);
  }
  const fast = createFastRecordBatch(Encoder, crc32c, lookupCodec);
  recordModule.exports = fast.Record;
  batchModule.RecordBatch = fast.RecordBatch;
  return (applied = true);
}
