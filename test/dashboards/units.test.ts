/**
 * Units and legends of the generated dashboards (the committed JSON Grafana loads). Each panel's
 * unit must be the one its queries measure, read from the metric names (Prometheus conventions:
 * _seconds, _bytes, _total) and the query shape (rate, increase, ratio, quantile): a byte gauge in
 * bytes, a duration in seconds, a rate of a counter per second, CPU seconds per second as a share
 * of a core, counts with integer ticks. Series that never have data list no legend entry: queries
 * that can yield NaN are shaped not to, and a series without values is hidden. The real Prometheus
 * check (prometheus.test.ts) runs the same queries on real data.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DASHBOARDS } from '../../dashboards/index.ts';
import { ROOT } from '../../dashboards/generate.ts';
import { HIDE_EMPTY_SERIES } from '../../dashboards/lib/spec.ts';

type Kind = 'duration' | 'size' | 'size-rate' | 'ratio' | 'cpu' | 'count-rate' | 'count' | 'info';

/** Grafana unit ids that fit each kind of value. */
const UNITS: Record<Kind, readonly string[]> = {
  duration: ['s', 'ms'],
  size: ['bytes', 'decbytes'],
  'size-rate': ['Bps', 'binBps'],
  ratio: ['percentunit'],
  cpu: ['percentunit'],
  'count-rate': ['reqps', 'ops', 'cps', 'rps', 'wps'],
  count: ['short', 'none'],
  info: ['short', 'none'],
};

interface Panel {
  type: string;
  title: string;
  targets?: { expr: string }[];
  fieldConfig?: { defaults?: { unit?: string; min?: number; decimals?: number; custom?: { axisSoftMax?: number } }; overrides?: unknown[] };
}

const METRIC = /\b((?:palisade|process|nodejs)_[a-z0-9_]+)/g;

/** What one query measures, from its shape and its metric's name. */
function kindOf(expr: string): Kind {
  const e = expr.trim();
  const metrics = [...e.matchAll(METRIC)].map((m) => m[1]!);
  expect(metrics.length, `no metric in ${e}`).toBeGreaterThan(0);
  const m = metrics[0]!;
  if (e.startsWith('histogram_quantile(')) {
    if (m.endsWith('_seconds_bucket')) return 'duration';
    if (m.endsWith('_bytes_bucket')) return 'size';
    throw new Error(`quantile of a histogram without a unit in its name: ${m}`);
  }
  if (/\s\/\s/.test(e)) return 'ratio';
  if (m.endsWith('_info')) return 'info';
  if (/\brate\(/.test(e)) {
    if (m.endsWith('_seconds_total')) return 'cpu';
    if (m.endsWith('_bytes_total')) return 'size-rate';
    return 'count-rate';
  }
  if (/\bincrease\(/.test(e)) {
    if (m.endsWith('_seconds_total')) return 'duration';
    if (m.endsWith('_bytes_total')) return 'size';
    return 'count';
  }
  if (m.endsWith('_bytes')) return 'size';
  if (m.endsWith('_seconds')) return 'duration';
  return 'count';
}

function panelsOf(file: string): Panel[] {
  const d = JSON.parse(readFileSync(join(ROOT, 'dashboards', file), 'utf8')) as { panels: Panel[] };
  return d.panels.filter((p) => p.type !== 'row');
}

describe('dashboard units and legends', () => {
  it('the kind of a query is read from its shape and metric name', () => {
    expect(kindOf('sum by (sink) (palisade_decision_spool_bytes{job=~"$job"})')).toBe('size');
    expect(kindOf('histogram_quantile(0.99, sum by (le) (rate(palisade_request_duration_seconds_bucket[1m]))) >= 0')).toBe('duration');
    expect(kindOf('sum(rate(process_cpu_seconds_total[1m]))')).toBe('cpu');
    expect(kindOf('sum(rate(palisade_requests_total[1m]))')).toBe('count-rate');
    expect(kindOf('sum(increase(palisade_policy_reloads_total[1m]))')).toBe('count');
    expect(kindOf('sum(rate(a_total{x="1"}[1m])) / (sum(rate(palisade_requests_total[1m])) > 0)')).toBe('ratio');
    expect(kindOf('max(palisade_decision_buffer_events)')).toBe('count');
  });

  for (const spec of DASHBOARDS) {
    describe(spec.file, () => {
      const panels = panelsOf(spec.file);

      it('every panel has the unit of what its queries measure', () => {
        const wrong: string[] = [];
        for (const p of panels) {
          const unit = p.fieldConfig?.defaults?.unit;
          if (!unit) {
            wrong.push(`${p.title}: no unit`);
            continue;
          }
          for (const t of p.targets ?? []) {
            const kind = kindOf(t.expr);
            if (!UNITS[kind].includes(unit)) wrong.push(`${p.title}: unit ${unit}, but the query measures ${kind} (${UNITS[kind].join(' or ')}): ${t.expr}`);
          }
        }
        expect(wrong).toEqual([]);
      });

      it('time series axes start at 0; counts are whole numbers (integer ticks); byte axes never tick in fractions of a byte', () => {
        for (const p of panels.filter((x) => x.type === 'stat' || x.type === 'bargauge')) {
          if (UNITS.count.includes(p.fieldConfig!.defaults!.unit!)) expect(p.fieldConfig?.defaults?.decimals, `${p.title}: a count shows whole numbers`).toBe(0);
        }
        for (const p of panels.filter((x) => x.type === 'timeseries')) {
          const d = p.fieldConfig?.defaults;
          expect(d?.min, p.title).toBe(0);
          if (UNITS.count.includes(d!.unit!)) expect(d?.decimals, `${p.title}: a count needs decimals 0 (integer ticks)`).toBe(0);
          if (d!.unit === 'bytes') expect(d?.custom?.axisSoftMax, `${p.title}: an all-zero byte series must span whole bytes`).toBeGreaterThanOrEqual(1024);
        }
      });

      it('no legend entry for a series that never has data: no NaN-shaped query, and empty series are hidden', () => {
        for (const p of panels) {
          for (const t of p.targets ?? []) {
            // A quantile of an empty histogram is NaN: its points are filtered out.
            if (t.expr.startsWith('histogram_quantile(')) expect(t.expr, p.title).toMatch(/\)\s*>=\s*0$/);
            // A ratio divides only where the denominator is positive (0/0 is NaN).
            for (const m of t.expr.matchAll(/\)\s*\/\s*(.*)$/g)) expect(m[1], p.title).toMatch(/^\(.*>\s*0\)$/);
          }
          if (p.type === 'timeseries') expect(p.fieldConfig?.overrides, p.title).toContainEqual(HIDE_EMPTY_SERIES);
        }
      });
    });
  }
});
