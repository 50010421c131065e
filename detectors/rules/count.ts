/**
 * A count of one kind of event over a window against the client's own
 * per-second baseline of that kind, scaled to the window (mean x seconds,
 * sigma x sqrt(seconds)); optionally also a minimum share of the client's
 * requests. Shared by auth.*, enumeration.not-found and probing.schema.
 */
import type { CountDetectionConfig, DetectionId } from '../config.ts';
import { fmt } from '../engine/anomaly.ts';
import { METRIC_NAMES, M_REQ, type ClientState } from '../engine/client-state.ts';
import type { RuleContext } from './context.ts';
import type { DecisionRecord } from '../../src/decision/record.ts';
import { threshold, thresholdRule } from './threshold.ts';

export function checkCount(e: RuleContext, c: ClientState, r: DecisionRecord, id: DetectionId, cfg: CountDetectionConfig, slot: number, what: string, warm: boolean): void {
  if (!cfg.enabled || (cfg.requireWarmup === true && !warm)) return;
  const win = c.windows[cfg.window];
  const observed = win.total(slot);
  if (observed < cfg.minCount) return;
  const requests = win.total(M_REQ);
  const share = requests > 0 ? observed / requests : 0;
  if (cfg.minRatio !== undefined && share < cfg.minRatio) return;
  const seconds = win.windowMs / 1000;
  const mean = c.series.mean[slot]! * seconds;
  const sd = c.series.sd(slot) * Math.sqrt(seconds);
  // A baseline that is itself mostly failures is no normal to compare with: the floors decide.
  const usualShare = c.series.mean[M_REQ]! > 0 ? c.series.mean[slot]! / c.series.mean[M_REQ]! : 0;
  const ignored = !warm ? 'client in warm-up' : cfg.minRatio !== undefined && usualShare >= cfg.minRatio ? `its usual share ${fmt(usualShare)} is itself above ${fmt(cfg.minRatio)}` : null;
  const thr = ignored === null ? threshold(cfg.minCount, cfg.ratio, cfg.sigma, mean, sd) : cfg.minCount;
  if (observed < thr) return;
  const metric = METRIC_NAMES[slot]!;
  e.report(c, r, id, observed, thr, () => ({
    metric,
    unit: 'events',
    thresholdRule:
      (ignored === null ? thresholdRule(cfg.minCount, cfg.ratio, cfg.sigma, mean, sd) : `floor ${cfg.minCount} (client baseline not used: ${ignored})`) +
      (cfg.minRatio !== undefined ? ` and share of requests >= ${fmt(cfg.minRatio)} (observed ${fmt(share)})` : ''),
    baseline: ignored === null ? { source: 'client', mean, stddev: sd, samples: c.series.n, unit: `${metric} per ${seconds} s` } : { source: 'none', mean: 0, stddev: 0, samples: c.series.n, unit: `${metric} per ${seconds} s` },
    window: { seconds, start: win.start(), end: win.end() },
    route: null,
    summary: `${fmt(observed)} ${what} in the last ${seconds} s (${fmt(share * 100)}% of ${fmt(requests)} requests) ${ignored === null ? `against this client's usual ${fmt(mean)} ± ${fmt(sd)}` : `(no usable baseline: ${ignored})`} (threshold ${fmt(thr)})`,
  }));
}
