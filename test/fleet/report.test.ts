// The fleet report from status records: drift, stale and forgotten records, refusals, workload names.
import { describe, expect, it } from 'vitest';
import { fleetReport } from '../../src/fleet/report.ts';
import { decodeStatus, STATUS_SCHEMA, workloadOfPod, type SidecarStatus } from '../../src/fleet/status.ts';

const NOW = Date.parse('2026-12-06T12:00:00Z');
function rec(pod: string, hash: string | null, agoMs: number, o: Partial<SidecarStatus> = {}): SidecarStatus {
  return {
    schema: STATUS_SCHEMA,
    workload: 'orders',
    namespace: 'shop',
    pod,
    version: '0.1.0',
    policy: hash === null ? null : { name: 'orders', version: hash.slice(0, 1), hash, verified: true, keyId: 'aaaaaaaaaaaaaaaa' },
    refused: null,
    blocklistTopic: 'palisade.blocklist.v1',
    blocklistPosition: '4',
    blocklistApplied: [],
    startedAt: new Date(NOW - 60_000).toISOString(),
    lastSeen: new Date(NOW - agoMs).toISOString(),
    intervalMs: 5000,
    ...o,
  };
}

describe('fleetReport', () => {
  it('one hash: no drift; two hashes among live sidecars: drift, most pods first', () => {
    expect(fleetReport([rec('a', '1'.repeat(64), 0), rec('b', '1'.repeat(64), 1000)], { now: NOW }).drift).toBe(false);
    const r = fleetReport([rec('a', '2'.repeat(64), 0), rec('b', '1'.repeat(64), 0), rec('c', '1'.repeat(64), 0)], { now: NOW });
    expect(r.drift).toBe(true);
    expect(r.workloads[0]!.policies.map((p) => [p.hash?.slice(0, 1), p.pods])).toEqual([
      ['1', ['b', 'c']],
      ['2', ['a']],
    ]);
  });

  it('a stale sidecar is listed but leaves the counts and the drift; a long-gone one is forgotten', () => {
    // Default stale-after: 3 intervals (15 s here).
    const r = fleetReport([rec('a', '1'.repeat(64), 0), rec('b', '2'.repeat(64), 16_000), rec('c', '2'.repeat(64), 2 * 3_600_000)], { now: NOW });
    expect(r.drift).toBe(false);
    expect(r.workloads[0]).toMatchObject({ sidecars: 1, stale: [{ pod: 'b' }] });
    expect(fleetReport([rec('a', '1'.repeat(64), 4000)], { now: NOW, staleAfterMs: 3000 }).workloads[0]!.sidecars).toBe(0);
  });

  it('refusals are listed per pod; workloads are per namespace', () => {
    const r = fleetReport([rec('a', '1'.repeat(64), 0, { refused: { code: 'POLICY_SIGNATURE_INVALID', reason: 'x', at: 'y' } }), rec('a', '1'.repeat(64), 0, { namespace: 'other' })], { now: NOW });
    expect(r.workloads.map((w) => w.namespace)).toEqual(['other', 'shop']);
    expect(r.workloads[1]!.refused).toEqual([{ pod: 'a', code: 'POLICY_SIGNATURE_INVALID', reason: 'x', at: 'y' }]);
  });
});

describe('status records', () => {
  it('workload names from pod names', () => {
    expect(workloadOfPod('orders-api-7c9f8d6b5-x2k4q')).toBe('orders-api');
    expect(workloadOfPod('kafka-0')).toBe('kafka');
    expect(workloadOfPod('node-agent-q8z2m')).toBe('node-agent');
    expect(workloadOfPod('my-laptop')).toBe('my-laptop');
  });

  it('decodes its own records and skips anything else', () => {
    const r = rec('a', null, 0);
    expect(decodeStatus(Buffer.from(JSON.stringify(r)))).toEqual(r);
    expect(decodeStatus(Buffer.from('{"schema":2}'))).toBeNull();
    expect(decodeStatus(Buffer.from('not json'))).toBeNull();
    expect(decodeStatus(null)).toBeNull();
  });
});

describe('block acknowledgement', () => {
  it('applied by the sidecars whose position passed the offset; slowest from their history, sidecars started later left out', async () => {
    const { blockAck, ackText } = await import('../../src/fleet/ack.ts');
    const added = NOW - 10_000;
    const live = [
      rec('a', null, 0, { blocklistPosition: '8', blocklistApplied: [{ position: '5', at: new Date(added - 5000).toISOString() }, { position: '8', at: new Date(added + 410).toISOString() }] }),
      rec('b', null, 0, { blocklistPosition: '8', blocklistApplied: [{ position: '8', at: new Date(added + 120).toISOString() }] }),
      rec('c', null, 0, { blocklistPosition: '7' }),
      rec('d', null, 0, { blocklistPosition: '8', startedAt: new Date(added + 60_000).toISOString(), blocklistApplied: [{ position: '8', at: new Date(added + 61_000).toISOString() }] }),
    ];
    const a = blockAck(7n, added, live);
    expect(a).toEqual({ sidecars: 4, applied: 3, pending: ['c'], slowestMs: 410 });
    expect(ackText(a)).toBe('applied 3/4, slowest 0.41 s');
    expect(ackText(blockAck(7n, added, []))).toBe('applied 0/0');
  });
});
