/**
 * The compression codecs of every kafkajs client in Palisade, installed once when
 * src/kafka/client.ts loads (kafkajs keeps one codec table per process, for
 * producers and consumers alike, and offers it for exactly this).
 *
 * - zstd: Node's own zlib (no extra package). kafkajs has no zstd of its own, and a
 *   producer that sends zstd needs every kafkajs consumer of the topic (the detector,
 *   the CLI's readers) to decompress it: they load this module too.
 * - gzip: kafkajs's own codec runs zlib's streaming gzip at level 6 through a promise,
 *   with a stream object and a thread-pool hop per partition batch. Here it is level 1
 *   (measured on decision events: a quarter of the CPU of level 6 for 4 % more bytes,
 *   docs/kafka.md) and, off the main thread (the decision sink's own thread by default),
 *   one synchronous call: that thread has nothing else to do meanwhile, and the call
 *   costs less than the stream around it. On the main thread (PALISADE_DECISIONS_THREAD
 *   =main, the detector) it stays asynchronous, so requests are not held up by it.
 * Decompression accepts what any producer sends (zlib's unzip takes gzip and zlib data).
 */
import { promisify } from 'node:util';
import { isMainThread } from 'node:worker_threads';
import zlib from 'node:zlib';
import kafkajs from 'kafkajs';

/** Compression of produce batches (PALISADE_KAFKA_COMPRESSION). */
export type Compression = 'none' | 'gzip' | 'zstd';
export const COMPRESSIONS: readonly Compression[] = ['none', 'gzip', 'zstd'];

/** gzip level of produce batches: 1 (fastest) measured best per CPU for decision events. */
export const GZIP_LEVEL = 1;
/** zstd level of produce batches: zstd's default, 3. */
export const ZSTD_LEVEL = 3;

// kafkajs is CommonJS and Node's named-export detection stops before these.
const { CompressionCodecs, CompressionTypes } = kafkajs;

/** The part of a kafkajs Encoder a codec reads. */
interface EncoderLike {
  readonly buffer: Buffer;
}

interface Codec {
  compress(encoder: EncoderLike): Promise<Buffer>;
  decompress(buffer: Buffer): Promise<Buffer>;
}

const gzipAsync = promisify(zlib.gzip);
const unzipAsync = promisify(zlib.unzip);
const zstdCompressAsync = promisify(zlib.zstdCompress);
const zstdDecompressAsync = promisify(zlib.zstdDecompress);

const GZIP_OPTIONS: zlib.ZlibOptions = { level: GZIP_LEVEL };
const ZSTD_OPTIONS: zlib.ZstdOptions = { params: { [zlib.constants.ZSTD_c_compressionLevel]: ZSTD_LEVEL } };

export const gzipCodec: Codec = {
  compress: isMainThread ? (e) => gzipAsync(e.buffer, GZIP_OPTIONS) : async (e) => zlib.gzipSync(e.buffer, GZIP_OPTIONS),
  decompress: (b) => unzipAsync(b),
};

export const zstdCodec: Codec = {
  compress: isMainThread ? (e) => zstdCompressAsync(e.buffer, ZSTD_OPTIONS) : async (e) => zlib.zstdCompressSync(e.buffer, ZSTD_OPTIONS),
  decompress: (b) => zstdDecompressAsync(b),
};

let installed = false;

/** Puts the codecs above in kafkajs's table (idempotent). */
export function installKafkaCodecs(): void {
  if (installed) return;
  const table = CompressionCodecs as Record<number, () => Codec>;
  table[CompressionTypes.GZIP] = () => gzipCodec;
  table[CompressionTypes.ZSTD] = () => zstdCodec;
  installed = true;
}

/** The kafkajs compression type of a setting value. */
export function compressionType(c: Compression): number {
  if (c === 'gzip') return CompressionTypes.GZIP;
  if (c === 'zstd') return CompressionTypes.ZSTD;
  return CompressionTypes.None;
}
