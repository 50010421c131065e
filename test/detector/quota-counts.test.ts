// The quota aggregator's counting per decisions partition (no I/O): each instance counts the
// partitions it owns, adds the counts other instances published for theirs, takes a partition
// over from its checkpoint (skipping the events the checkpoint already holds) and ends the
// records of windows that are over.
import { describe, expect, it } from 'vitest';
import { decodeQuotaCount, quotaCountKey, QUOTA_COUNT_VERSION, type QuotaCountRecord } from '../../detectors/quota/count-record.ts';
import { QuotaCounts, type CountCheckpoint } from '../../detectors/quota/counts.ts';
import type { DecisionRecord } from '../../src/decision/record.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const base = 1_800_000_000_000;

function decision(key: string, time: number, limit = 10, windowMs = HOUR): DecisionRecord {
  return { quotas: [{ rule: 'fleet', key, limit, windowMs }], policy: { name: 'orders', version: '1', hash: 'h' }, server: { ip: '10.0.0.1', port: 8443 }, time } as unknown as DecisionRecord;
}
/** What the counts topic hands every follower for a checkpoint (encoded and decoded, as on the wire). */
function wire(records: readonly CountCheckpoint[]) {
  return records.map((r) => {
    const d = decodeQuotaCount({ key: Buffer.from(quotaCountKey(r.id)), value: r.record ? Buffer.from(JSON.stringify({ v: QUOTA_COUNT_VERSION, ...r.record })) : null });
    if (d.type === 'invalid') throw new Error(d.reason);
    return { id: d.id, record: d.type === 'count' ? d.record : null };
  });
}

describe('quota counts per partition', () => {
  it('two instances owning different partitions add up each other\'s published counts: over at the total, from an event or from a published count', () => {
    const a = new QuotaCounts({ fairShare: false }, new Set([0]));
    const b = new QuotaCounts({ fairShare: false }, new Set([1]));
    const t = base + 1000;
    let offA = 0n;
    let offB = 0n;
    for (let i = 0; i < 4; i++) expect(a.add(decision('t1', t), t, 0, offA++)).toEqual([]);
    for (let i = 0; i < 4; i++) expect(b.add(decision('t1', t), t, 1, offB++)).toEqual([]);
    // Each sees only its own part until the other publishes.
    expect([a.total('orders', 'fleet', 't1'), b.total('orders', 'fleet', 't1')]).toEqual([4, 4]);
    const exchange = () => {
      const ca = a.checkpoint(() => offA).records;
      const cb = b.checkpoint(() => offB).records;
      const out = [...wire(ca).flatMap((x) => b.onPublished(x.id, x.record, t)), ...wire(cb).flatMap((x) => a.onPublished(x.id, x.record, t))];
      // Our own records come back too: they change nothing (our live count is newer).
      for (const x of wire(ca)) a.onPublished(x.id, x.record, t);
      for (const x of wire(cb)) b.onPublished(x.id, x.record, t);
      return out;
    };
    expect(exchange()).toEqual([]);
    expect([a.total('orders', 'fleet', 't1'), b.total('orders', 'fleet', 't1')]).toEqual([8, 8]);
    // Nothing changed: nothing to write.
    expect(a.checkpoint(() => offA).records).toEqual([]);
    // A crosses with its own event: 9 + 1.
    expect(a.add(decision('t1', t), t, 0, offA++)).toEqual([]);
    const crossing = a.add(decision('t1', t), t, 0, offA++);
    expect(crossing.map((r) => [r.state, r.count])).toEqual([['over', 10]]);
    // B learns the total from A's checkpoint and says the same (a duplicate verdict is harmless).
    expect(exchange().map((r) => [r.state, r.count])).toEqual([['over', 10]]);
    expect(b.overCount(t)).toBe(1);

    // Crossing from a published count alone: both at 5 of a quota of 10, each having seen 4 of the other.
    const c = new QuotaCounts({ fairShare: false }, new Set([0]));
    const d = new QuotaCounts({ fairShare: false }, new Set([1]));
    const rec = (partition: number, count: number, next: number) => ({ id: { partition, workload: 'orders', rule: 'fleet', key: 't2' }, record: { v: 1, windowStart: base, windowMs: HOUR, limit: 10, count, next: String(next) } as QuotaCountRecord });
    for (let i = 0; i < 5; i++) c.add(decision('t2', t), t, 0, BigInt(i));
    for (let i = 0; i < 5; i++) d.add(decision('t2', t), t, 1, BigInt(i));
    expect(c.onPublished(rec(1, 4, 4).id, rec(1, 4, 4).record, t)).toEqual([]);
    expect(c.total('orders', 'fleet', 't2')).toBe(9);
    expect(c.onPublished(rec(1, 5, 5).id, rec(1, 5, 5).record, t).map((r) => [r.state, r.count])).toEqual([['over', 10]]);
    // A published count of another window, or one whose window ended, is not added.
    const e = new QuotaCounts({ fairShare: false }, new Set([0]));
    e.add(decision('t3', t), t, 0, 0n);
    e.onPublished({ partition: 1, workload: 'orders', rule: 'fleet', key: 't3' }, { v: 1, windowStart: base - HOUR, windowMs: HOUR, limit: 10, count: 9, next: '9' }, t);
    expect(e.total('orders', 'fleet', 't3')).toBe(1);
  });

  it('near the quota, a count just published by another instance gives fair shares too; one read back after a restart does not', () => {
    const t = base + 30_000;
    const c = new QuotaCounts({ fairShare: true, remoteDelayMs: 1000 }, new Set([0]));
    for (let i = 0; i < 5; i++) c.add({ ...decision('t1', t, 100, MINUTE), server: { ip: `10.0.0.${i % 2}`, port: 8443 } } as DecisionRecord, t, 0, BigInt(i));
    // At 5 of 100 after 30 s, nothing to hurry: no early checkpoint.
    expect(c.takeHot()).toBe(false);
    const id = { partition: 1, workload: 'orders', rule: 'fleet', key: 't1' };
    // An old count (read back at a restart) taking the total to 90: no share from it.
    const old = new QuotaCounts({ fairShare: true }, new Set([0]));
    old.add(decision('t1', t, 100, MINUTE), t, 0, 0n);
    expect(old.onPublished(id, { v: 1, windowStart: base, windowMs: MINUTE, limit: 100, count: 89, next: '89' }, t, t - 10_000)).toEqual([]);
    // Just published: near, with the share less what may be in flight (the key's rate times the age
    // of published counts near the quota: 200 ms).
    const near = c.onPublished(id, { v: 1, windowStart: base, windowMs: MINUTE, limit: 100, count: 85, next: '85' }, t, t);
    expect(near.map((r) => [r.state, r.count, r.sidecars])).toEqual([['near', 90, 2]]);
    // (100 - 90 - 3/s * 0.2 s) / 2 sidecars = 4.7
    expect(near[0]?.share).toBe(4);
    // Near the quota: checkpoint early (other instances add up this one's counts).
    expect(c.takeHot()).toBe(true);
    expect(c.takeHot()).toBe(false);
  });

  it('takes a partition over from its checkpoint: the events below the checkpoint\'s offset are not counted again; ended windows are not restored', () => {
    const owned = new Set<number>();
    const c = new QuotaCounts({ fairShare: false }, owned);
    const t = base + 10 * MINUTE;
    // The previous owner's checkpoint of partition 2, valid at offset 100; and one of an hour that ended.
    c.onPublished({ partition: 2, workload: 'orders', rule: 'fleet', key: 't1' }, { v: 1, windowStart: base, windowMs: HOUR, limit: 10, count: 7, next: '100' }, t);
    c.onPublished({ partition: 2, workload: 'orders', rule: 'fleet', key: 'old' }, { v: 1, windowStart: base - HOUR, windowMs: HOUR, limit: 10, count: 3, next: '40' }, t);
    // Not owned yet: it counts as another instance's part.
    expect(c.total('orders', 'fleet', 't1')).toBe(0);
    owned.add(2);
    expect(c.restore([2], t)).toEqual([]);
    expect(c.restored).toBe(1);
    expect(c.total('orders', 'fleet', 't1')).toBe(7);
    expect(c.total('orders', 'fleet', 'old')).toBe(0);
    // Replayed from the last commit (98): 98 and 99 are in the checkpoint already.
    c.add(decision('t1', t), t, 2, 98n);
    c.add(decision('t1', t), t, 2, 99n);
    expect(c.total('orders', 'fleet', 't1')).toBe(7);
    c.add(decision('t1', t), t, 2, 100n);
    c.add(decision('t1', t), t, 2, 101n);
    expect(c.total('orders', 'fleet', 't1')).toBe(9);
    expect(c.counted).toBe(2);
    expect(c.add(decision('t1', t), t, 2, 102n).map((r) => [r.state, r.count])).toEqual([['over', 10]]);
    // The checkpoint writes the restored partition's count at the new offset.
    const cp = c.checkpoint(() => 103n);
    expect(cp.records).toEqual([{ id: { partition: 2, workload: 'orders', rule: 'fleet', key: 't1' }, record: { windowStart: base, windowMs: HOUR, limit: 10, count: 10, next: '103' } }]);
    // A failed write leaves it to the next checkpoint.
    cp.failed();
    expect(c.checkpoint(() => 103n).records).toHaveLength(1);

    // A restored key already over its quota is said over again (the previous owner may have died before it was).
    const d = new QuotaCounts({ fairShare: false }, new Set([0]));
    d.onPublished({ partition: 0, workload: 'orders', rule: 'fleet', key: 't9' }, { v: 1, windowStart: base, windowMs: HOUR, limit: 10, count: 10, next: '5' }, t);
    expect(d.restore([0], t).map((r) => [r.state, r.count, r.until])).toEqual([['over', 10, base + HOUR]]);

    // The ended hour's record of partition 2, now ours, is ended on the topic at the next sweep.
    expect(c.sweep(t).counts).toEqual([{ partition: 2, workload: 'orders', rule: 'fleet', key: 'old' }]);
    // Handed over to another instance: the live count goes; its published count is what remains.
    c.drop([2]);
    owned.delete(2);
    expect(c.size).toBe(0);
  });

  it('ends the records of a window that is over: the quota entries and the owned partitions\' counts', () => {
    const c = new QuotaCounts({ fairShare: false }, new Set([0, 1]));
    const t = base + 1000;
    for (let i = 0; i < 3; i++) c.add(decision('t1', t, 3, MINUTE), t, i % 2, BigInt(i));
    const cp = c.checkpoint((p) => (p === 0 ? 2n : 3n));
    expect(cp.records.map((r) => [r.id.partition, r.record?.count])).toEqual([
      [0, 2],
      [1, 1],
    ]);
    // Another instance's count of partition 5, followed: ended, but not ours to end.
    c.onPublished({ partition: 5, workload: 'orders', rule: 'fleet', key: 't1' }, { v: 1, windowStart: base, windowMs: MINUTE, limit: 3, count: 1, next: '1' }, t);
    expect(c.sweep(base + MINUTE - 1)).toEqual({ quotas: [], counts: [] });
    expect(c.sweep(base + MINUTE)).toEqual({
      quotas: [{ workload: 'orders', rule: 'fleet', key: 't1' }],
      counts: [
        { partition: 0, workload: 'orders', rule: 'fleet', key: 't1' },
        { partition: 1, workload: 'orders', rule: 'fleet', key: 't1' },
      ],
    });
    expect(c.size).toBe(0);
  });

  it('decodes the counts topic\'s records, tombstones, and refuses malformed ones', () => {
    const id = { partition: 3, workload: 'orders', rule: 'fleet', key: 'tenant-7' };
    const record = { v: 1, windowStart: base, windowMs: HOUR, limit: 10, count: 4, next: '12345678901234' };
    expect(decodeQuotaCount({ key: Buffer.from(quotaCountKey(id)), value: Buffer.from(JSON.stringify(record)) })).toEqual({ type: 'count', id, record });
    expect(decodeQuotaCount({ key: Buffer.from(quotaCountKey(id)), value: null })).toEqual({ type: 'end', id });
    expect(decodeQuotaCount({ key: Buffer.from('["orders","fleet","k"]'), value: null })).toMatchObject({ type: 'invalid', reason: 'key is not [partition, "workload", "rule", "key"]' });
    expect(decodeQuotaCount({ key: Buffer.from(quotaCountKey(id)), value: Buffer.from(JSON.stringify({ ...record, next: 12 })) })).toMatchObject({ type: 'invalid' });
    expect(decodeQuotaCount({ key: Buffer.from(quotaCountKey(id)), value: Buffer.from('{') })).toMatchObject({ type: 'invalid', reason: 'value is not JSON' });
  });
});
