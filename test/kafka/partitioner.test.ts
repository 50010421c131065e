// The sink's partitioner (src/kafka/partitioner.ts) remembers each key's partition: it must give
// exactly kafkajs's DefaultPartitioner's answer (murmur2 of the key, the Java client's placement),
// for any key and partition count, also after the partition count changes and past its size bound.
import kafkajs, { type PartitionerArgs, type PartitionMetadata } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { CachedDefaultPartitioner, PARTITION_CACHE_KEYS } from '../../src/kafka/partitioner.ts';

const { Partitioners } = kafkajs;

function metadata(n: number): PartitionMetadata[] {
  return Array.from({ length: n }, (_, i) => ({ partitionId: i, leader: i % 3, replicas: [0], isr: [0], offlineReplicas: [], partitionErrorCode: 0 }));
}
const args = (key: string | Buffer | null, n: number, partition?: number): PartitionerArgs => ({
  topic: 't',
  partitionMetadata: metadata(n),
  message: { key, value: 'v', ...(partition === undefined ? {} : { partition }) },
});

describe('CachedDefaultPartitioner', () => {
  it('gives kafkajs\'s DefaultPartitioner\'s partition for every key and partition count, first and repeated calls', () => {
    const mine = CachedDefaultPartitioner();
    const theirs = Partitioners.DefaultPartitioner();
    const keys = ['spiffe://bench.local/ns/load/sa/c0', '10.0.0.1', 'user-8842', 'é€😀', '', ...Array.from({ length: 500 }, (_, i) => `client-${i * 7919}`)];
    for (const n of [1, 3, 6, 12, 6]) {
      for (let pass = 0; pass < 2; pass++) {
        for (const k of keys) expect(mine(args(k, n)), `${k} over ${n}`).toBe(theirs(args(k, n)));
      }
    }
  });

  it('leaves a given partition, a Buffer key and no key to kafkajs', () => {
    const mine = CachedDefaultPartitioner();
    const theirs = Partitioners.DefaultPartitioner();
    expect(mine(args('a', 6, 4))).toBe(4);
    expect(mine(args(Buffer.from('client-1'), 6))).toBe(theirs(args(Buffer.from('client-1'), 6)));
    // No key: kafkajs's round robin over partitions with a leader.
    for (let i = 0; i < 20; i++) expect(mine(args(null, 6))).toBeGreaterThanOrEqual(0);
  });

  it('stays exact past its size bound (it starts a new memory)', () => {
    const mine = CachedDefaultPartitioner();
    const theirs = Partitioners.DefaultPartitioner();
    for (let i = 0; i < PARTITION_CACHE_KEYS * 2 + 5; i++) {
      const k = `k-${i}`;
      expect(mine(args(k, 6))).toBe(theirs(args(k, 6)));
    }
    expect(mine(args('k-0', 6))).toBe(theirs(args('k-0', 6)));
  });
});
