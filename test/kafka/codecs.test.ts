// The compression codecs kafkajs uses in Palisade (src/kafka/codecs.ts): the formats are the
// standard ones (gzip at level 1, zstd frames), and on the real broker every setting of
// PALISADE_KAFKA_COMPRESSION publishes events that the broker accepts (it decompresses and checks
// each batch) and that two independent consumers read back whole: kafkajs (through these codecs)
// and kcat (librdkafka's own gzip and zstd).
import { gunzipSync, zstdDecompressSync } from 'node:zlib';
import kafkajs from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { createKafkaSink } from '../../src/decision/sinks/kafka/index.ts';
import { compressionType, gzipCodec, installKafkaCodecs, zstdCodec, type Compression } from '../../src/kafka/codecs.ts';
import { createLogger } from '../../src/log/logger.ts';
import { deleteTopics, delivered, kcatRead, makeRecord, readTopic, sinkSettings } from '../decision/sinks/kafka/support.ts';

const { CompressionCodecs, CompressionTypes } = kafkajs;
const logger = createLogger({ level: 'silent' });
const topics: string[] = [];
afterAll(() => deleteTopics(topics));

const sample = Buffer.from(JSON.stringify(Array.from({ length: 200 }, (_, i) => ({ i, path: `/items/${i}`, verdict: 'allow' }))));

describe('Kafka compression codecs', () => {
  it('are the ones kafkajs looks up, for gzip and zstd', () => {
    installKafkaCodecs();
    const table = CompressionCodecs as Record<number, () => unknown>;
    expect(table[CompressionTypes.GZIP]!()).toBe(gzipCodec);
    expect(table[CompressionTypes.ZSTD]!()).toBe(zstdCodec);
    expect(compressionType('none')).toBe(CompressionTypes.None);
    expect(compressionType('gzip')).toBe(CompressionTypes.GZIP);
    expect(compressionType('zstd')).toBe(CompressionTypes.ZSTD);
  });

  it('gzip: a standard gzip member at the fastest level, read back by zlib; zstd: a standard zstd frame', async () => {
    const gz = await gzipCodec.compress({ buffer: sample });
    expect(gz.subarray(0, 3).toString('hex')).toBe('1f8b08'); // gzip magic, deflate
    expect(gz[8]).toBe(4); // XFL = 4: compressed with the fastest algorithm (level 1)
    expect(gunzipSync(gz).equals(sample)).toBe(true);
    expect((await gzipCodec.decompress(gz)).equals(sample)).toBe(true);
    const zs = await zstdCodec.compress({ buffer: sample });
    expect(zs.subarray(0, 4).toString('hex')).toBe('28b52ffd'); // zstd frame magic
    expect(zstdDecompressSync(zs).equals(sample)).toBe(true);
    expect((await zstdCodec.decompress(zs)).equals(sample)).toBe(true);
    expect(zs.length).toBeLessThan(sample.length / 4);
  });

  for (const compression of ['zstd', 'gzip', 'none'] as Compression[]) {
    it(`${compression}: the broker takes the batches; kafkajs and kcat read every event back`, { timeout: 90_000 }, async () => {
      const s = sinkSettings({ PALISADE_KAFKA_COMPRESSION: compression, PALISADE_KAFKA_BATCH_SIZE: '200', PALISADE_KAFKA_LINGER_MS: '5' });
      topics.push(s.kafkaTopicDecisions, s.kafkaTopicBlocklist, s.kafkaTopicAlerts);
      // Count what kafkajs decompresses with our codec while reading (none for "none").
      const table = CompressionCodecs as Record<number, () => { decompress(b: Buffer): Promise<Buffer> }>;
      const type = compressionType(compression);
      const own = table[type];
      let decompressed = 0;
      if (own) {
        const codec = own();
        table[type] = () => ({ ...codec, decompress: (b: Buffer) => (decompressed++, codec.decompress(b)) });
      }
      try {
        const sink = await createKafkaSink(s, logger);
        const n = 600;
        const ids: string[] = [];
        for (let i = 0; i < n; i++) {
          const r = makeRecord(i, `spiffe://test/codec-${i % 5}`);
          ids.push(r.id);
          sink.write(r);
        }
        await delivered(sink, n);
        expect(sink.stats()).toMatchObject({ delivered: n, dropped: 0 });
        await sink.close();
        const viaKafkajs = await readTopic(s.kafkaTopicDecisions, n);
        expect(viaKafkajs.map((m) => m.headers['event-id']).sort()).toEqual([...ids].sort());
        for (const m of viaKafkajs) expect(JSON.parse(m.value).metadata.uid).toBe(m.headers['event-id']);
        if (compression === 'none') expect(decompressed).toBe(0);
        else expect(decompressed).toBeGreaterThan(0);
        const viaKcat = await kcatRead(s.kafkaTopicDecisions);
        expect(viaKcat.map((m) => JSON.parse(m.payload!).metadata.uid).sort()).toEqual([...ids].sort());
      } finally {
        if (own) table[type] = own;
      }
    });
  }
});
