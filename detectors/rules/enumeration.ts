/**
 * enumeration.paths: distinct paths (HyperLogLog over the last half to full
 * window) against the client's usual distinct count per window; and
 * enumeration.not-found: 404s and their share of the client's requests.
 */
import { fmt } from '../engine/anomaly.ts';
import { M_NOT_FOUND, type ClientState } from '../engine/client-state.ts';
import type { RuleContext } from './context.ts';
import { HLL_REGISTERS, hllEstimate } from '../engine/hll.ts';
import type { DecisionRecord } from '../../src/decision/record.ts';
import { checkCount } from './count.ts';
import { threshold, thresholdRule } from './threshold.ts';

const BOTH_HALVES = [0, HLL_REGISTERS];

export function checkPaths(e: RuleContext, c: ClientState, r: DecisionRecord, t: number, warm: boolean): void {
  const cfg = e.detections['enumeration.paths'];
  // Warm for this detection also means its own baseline has samples (half windows the client was active in).
  const baselineReady = warm && c.distinct.n >= cfg.minSamples;
  if (!cfg.enabled || (cfg.requireWarmup === true && !baselineReady)) return;
  const observed = hllEstimate(c.hll, BOTH_HALVES);
  if (observed < cfg.minDistinct) return;
  const d = c.distinct;
  const mean = baselineReady ? d.mean : 0;
  const sd = baselineReady ? d.sd : 0;
  const thr = threshold(cfg.minDistinct, cfg.ratio, cfg.sigma, mean, sd);
  if (observed < thr) return;
  const seconds = (e.distinctHalfMs * 2) / 1000;
  e.report(c, r, 'enumeration.paths', observed, thr, () => ({
    metric: 'distinct_paths',
    unit: 'paths',
    thresholdRule: thresholdRule(cfg.minDistinct, cfg.ratio, cfg.sigma, mean, sd),
    baseline: { source: 'client', mean, stddev: sd, samples: d.n, unit: `distinct paths per ${seconds} s` },
    window: { seconds, start: (c.hllEpoch - 1) * e.distinctHalfMs, end: t },
    route: null,
    summary: `about ${fmt(observed)} distinct paths in the last ${seconds} s (HyperLogLog estimate, ±13%) against this client's usual ${fmt(mean)} ± ${fmt(sd)} (threshold ${fmt(thr)})`,
  }));
}

export function checkNotFound(e: RuleContext, c: ClientState, r: DecisionRecord, _t: number, warm: boolean): void {
  checkCount(e, c, r, 'enumeration.not-found', e.detections['enumeration.not-found'], M_NOT_FOUND, '404 responses', warm);
}
