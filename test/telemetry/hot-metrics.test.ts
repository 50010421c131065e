/**
 * The request-path metrics record through raw series (src/telemetry/hot-metrics.ts) and reach
 * prom-client at scrape time. Proof that the exposition did not change: the same records, fed
 * to plain prom-client metrics the way metrics.ts did before (helpers/legacy-request-metrics.ts),
 * give the same text, byte for byte, at every scrape.
 */
import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import type { DecisionRecord } from '../../src/decision/record.ts';
import { createSidecarMetrics, type SidecarMetrics } from '../../src/sidecar/metrics.ts';
import { HotCounter, HotGauge, HotHistogram } from '../../src/telemetry/hot-metrics.ts';
import { createLegacyRequestMetrics, type LegacyRequestMetrics } from './helpers/legacy-request-metrics.ts';
import { decisionRecord } from './helpers/record.ts';
import { variedRecords } from './helpers/varied-records.ts';

/** The blocks (# HELP, # TYPE, samples) of the named metrics in a text exposition, in its order. */
async function blocks(registry: Registry, names: readonly string[]): Promise<string> {
  const text = await registry.metrics();
  return text
    .trimEnd()
    .split('\n\n')
    .filter((b) => names.includes(b.slice('# HELP '.length, b.indexOf(' ', '# HELP '.length))))
    .join('\n\n');
}

function pair() {
  const newRegistry = new Registry();
  const oldRegistry = new Registry();
  const m = createSidecarMetrics(newRegistry, { processMetrics: false });
  const old = createLegacyRequestMetrics(oldRegistry);
  const both = (f: (x: SidecarMetrics | LegacyRequestMetrics) => void) => {
    f(m);
    f(old);
  };
  const record = (r: DecisionRecord) => {
    m.recordDecision(r);
    old.recordDecision(r);
  };
  const same = async () => {
    const want = await oldRegistry.metrics();
    const got = await blocks(newRegistry, old.names);
    expect(got).toBe(want.trimEnd());
    return want;
  };
  return { newRegistry, oldRegistry, m, old, both, record, same };
}

describe('request-path metrics through hot series', () => {
  it('give the same exposition as plain prom-client for varied records, scrape after scrape', async () => {
    const p = pair();
    // Before any request: the zero-initialised stage series, the in-flight gauge at 0.
    await p.same();
    const records = variedRecords(3000);
    let inFlight = 0;
    for (let i = 0; i < records.length; i++) {
      // Requests overlap: starts run ahead of the ends, so scrapes see a non-zero gauge.
      p.m.observer.onRequestStart?.();
      p.old.onRequestStart();
      if (++inFlight > 3) {
        p.m.observer.onRequestEnd?.();
        p.old.onRequestEnd();
        inFlight--;
      }
      p.m.observer.onDecision?.(records[i]!);
      p.old.recordDecision(records[i]!);
      // Scrapes at uneven points: sums must stay bit-identical across many flushes.
      if (i % 97 === 0 || i === 11) await p.same();
    }
    const text = await p.same();
    // The comparison covers every branch, not just empty metrics.
    for (const line of [
      'palisade_requests_in_flight 3',
      'palisade_requests_total{verdict="deny",stage="request",code="PATH_INVALID",route="(none)"}',
      'palisade_stage_duration_seconds_count{stage="validation",outcome="would_deny"}',
      'palisade_stage_duration_seconds_count{stage="forward",outcome="error"}',
      'palisade_upstream_errors_total{code="UPSTREAM_UNREACHABLE"}',
      'palisade_blocklist_hits_total{route="/health"}',
      'palisade_rate_limited_total{route="/orders",code="RATE_LIMITED_GLOBAL",rule="(none)"}',
      'palisade_rate_limited_total{route="/orders",code="RATE_LIMITED",rule="per-ip-trial"}',
      'palisade_would_deny_total{stage="ratelimit",code="RATE_LIMITED"}',
      'palisade_received_bytes_total{route="(none)"}',
      'palisade_upstream_duration_seconds_bucket{le="+Inf",route="/users/{id}/profile"}',
    ]) {
      expect(text).toContain(line);
    }
    // Observations above the last bound: +Inf (= _count) exceeds the last finite bucket.
    const last = Number(/palisade_request_duration_seconds_bucket\{le="30",verdict="allow",route="\/orders"\} (\d+)/.exec(text)?.[1]);
    const inf = Number(/palisade_request_duration_seconds_bucket\{le="\+Inf",verdict="allow",route="\/orders"\} (\d+)/.exec(text)?.[1]);
    expect(inf).toBeGreaterThan(last);
  });

  it('reset, remove and zero on the prom-client objects drop what is pending, as prom-client did', async () => {
    const p = pair();
    const [a, b, c, d] = [variedRecords(200, 2), variedRecords(200, 3), variedRecords(200, 4), variedRecords(200, 5)];
    a.forEach(p.record);
    await p.same();
    b.forEach(p.record); // pending in the hot series when the registry is reset
    p.newRegistry.resetMetrics();
    p.oldRegistry.resetMetrics();
    c.forEach(p.record);
    await p.same();
    const allow = { verdict: 'allow', stage: 'forward', code: 'ALLOWED', route: '/orders/{id}' } as const;
    p.record(decisionRecord());
    p.both((x) => x.requests.remove(allow));
    p.both((x) => x.stageDuration.zero({ stage: 'authn', outcome: 'continue' }));
    p.both((x) => x.stageDuration.remove('authz', 'continue'));
    d.forEach(p.record);
    await p.same();
    // A record prom-client refuses (NaN): the same TypeError, after the same partial update.
    const bad = decisionRecord({ durationMs: Number.NaN, route: '/nan' });
    expect(() => p.m.recordDecision(bad)).toThrow(TypeError);
    expect(() => p.old.recordDecision(bad)).toThrow(TypeError);
    await p.same();
  });

  it('direct observe/inc on the same series still count (sums equal up to rounding)', async () => {
    const p = pair();
    const records = variedRecords(500, 6);
    const parse = async (r: Registry, names: readonly string[]) =>
      new Map(
        (await blocks(r, names))
          .split('\n')
          .filter((l) => l !== '' && !l.startsWith('#'))
          .map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))] as const),
      );
    for (let i = 0; i < records.length; i++) {
      p.record(records[i]!);
      if (i % 50 === 0) {
        p.both((x) => x.stageDuration.observe({ stage: 'authn', outcome: 'continue' }, 0.0003));
        p.both((x) => x.requests.inc({ verdict: 'allow', stage: 'forward', code: 'ALLOWED', route: '/orders' }));
        p.both((x) => x.requestsInFlight.inc(2));
      }
      if (i % 120 === 0) await parse(p.newRegistry, p.old.names);
    }
    const want = await parse(p.oldRegistry, p.old.names);
    const got = await parse(p.newRegistry, p.old.names);
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [k, v] of want) {
      if (k.includes('_sum')) expect(got.get(k)).toBeCloseTo(v, 12);
      else expect(got.get(k), k).toBe(v);
    }
  });
});

describe('hot metric classes', () => {
  it('are the prom-client types, register like them and start empty', async () => {
    const r = new Registry();
    const h = new HotHistogram({ name: 'h_seconds', help: 'h', labelNames: ['x'] as const, buckets: [0.1, 1], registers: [r] });
    const c = new HotCounter({ name: 'c_total', help: 'c', labelNames: ['x'] as const, registers: [r] });
    const g = new HotGauge({ name: 'g', help: 'g', registers: [r] });
    expect(r.getSingleMetric('h_seconds')).toBe(h);
    // A series object alone adds nothing; its first observation does.
    const s = h.series({ x: 'a' });
    c.series({ x: 'a' });
    expect(await r.metrics()).toBe('# HELP h_seconds h\n# TYPE h_seconds histogram\n\n# HELP c_total c\n# TYPE c_total counter\n\n# HELP g g\n# TYPE g gauge\ng 0\n');
    s.observe(0.1);
    s.observe(5);
    c.series({ x: 'a' }).inc(0);
    g.add(2);
    g.add(-1);
    expect(await r.metrics()).toBe(
      [
        '# HELP h_seconds h',
        '# TYPE h_seconds histogram',
        'h_seconds_bucket{le="0.1",x="a"} 1',
        'h_seconds_bucket{le="1",x="a"} 1',
        'h_seconds_bucket{le="+Inf",x="a"} 2',
        'h_seconds_sum{x="a"} 5.1',
        'h_seconds_count{x="a"} 2',
        '',
        '# HELP c_total c',
        '# TYPE c_total counter',
        'c_total{x="a"} 0',
        '',
        '# HELP g g',
        '# TYPE g gauge',
        'g 1',
        '',
      ].join('\n'),
    );
    expect(() => c.series({ x: 'a' }).inc(-1)).toThrow(TypeError);
    expect(() => s.observe(Number.POSITIVE_INFINITY)).toThrow(TypeError);
  });
});
