// The CRC-32C that src/kafka/record-batch.ts writes into every record batch (the broker refuses a
// batch whose checksum is wrong): RFC 3720's test vectors, and kafkajs's own byte-at-a-time
// function over random buffers of every length around the eight-byte steps.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/kafka/crc32c.ts';

const require = createRequire(import.meta.url);
const kafkajsCrc32c = require('kafkajs/src/protocol/recordBatch/crc32C/index.js') as (b: Buffer) => number;

describe('crc32c', () => {
  it('gives the known check values (RFC 3720 B.4, and "123456789")', () => {
    expect(crc32c(Buffer.alloc(32, 0))).toBe(0x8a9136aa);
    expect(crc32c(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
    expect(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => i)))).toBe(0x46dd794e);
    expect(crc32c(Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i)))).toBe(0x113fdb5c);
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
  });

  it('agrees with kafkajs\'s own CRC-32C on random data, every length 0-100 and large buffers, at any offset', () => {
    let seed = 12345;
    const next = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
    const big = Buffer.from(Array.from({ length: 70_000 }, next));
    for (let len = 0; len <= 100; len++) {
      for (const start of [0, 1, 3, 7]) {
        const b = big.subarray(start, start + len);
        expect(crc32c(b), `length ${len} at ${start}`).toBe(kafkajsCrc32c(b));
      }
    }
    expect(crc32c(big)).toBe(kafkajsCrc32c(big));
    expect(crc32c(big.subarray(5, 65_541))).toBe(kafkajsCrc32c(big.subarray(5, 65_541)));
  });
});
