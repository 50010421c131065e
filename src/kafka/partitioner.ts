/**
 * kafkajs's DefaultPartitioner (murmur2 of the key, the Java client's placement) with the
 * partition of each recent key remembered. A sidecar's decision keys repeat (one per client
 * identity or IP), and kafkajs computes murmur2 through 64-bit `Long` objects and filters the
 * partition list again for every message: about a tenth of kafkajs's CPU per event in the
 * sink (profiled, docs/kafka.md). For a key the answer depends only on the key and the
 * partition count, so it is exact to remember it; messages without a string key (or with a
 * partition given) go to kafkajs's partitioner as before.
 */
import kafkajs, { type ICustomPartitioner } from 'kafkajs';

// kafkajs is CommonJS and Node's named-export detection stops before Partitioners.
const { Partitioners } = kafkajs;

/** Keys remembered at most; then the memory starts again (a new map), so it stays bounded. */
export const PARTITION_CACHE_KEYS = 10_000;

export const CachedDefaultPartitioner: ICustomPartitioner = () => {
  const partitioner = Partitioners.DefaultPartitioner();
  let cache = new Map<string, number>();
  let partitions = -1;
  return (args) => {
    const { partitionMetadata, message } = args;
    const key = message.key;
    if (typeof key !== 'string' || (message.partition !== null && message.partition !== undefined)) return partitioner(args);
    const n = partitionMetadata.length;
    if (n !== partitions || cache.size >= PARTITION_CACHE_KEYS) {
      cache = new Map();
      partitions = n;
    }
    let p = cache.get(key);
    if (p === undefined) {
      p = partitioner(args);
      cache.set(key, p);
    }
    return p;
  };
};
