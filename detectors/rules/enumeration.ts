/**
 * enumeration.paths: distinct paths (HyperLogLog over the last half to full
 * window) against the client's usual distinct count per window; and
 * enumeration.not-found: 404s and their share of the client's requests; and
 * enumeration.forbidden: authorization denials (403) with many distinct paths.
 */
import { fmt } from '../engine/anomaly.ts';
import { M_DENIED, M_NOT_FOUND, M_REQ, type ClientState } from '../engine/client-state.ts';
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

/**
 * Many 403s on many distinct paths: walking resources the identity may not read. A valid identity
 * that a policy denies on its usual few paths never reaches the distinct-path floor, so a policy
 * mistake does not make its clients look like attackers. Floors only: no client baseline of
 * denials is kept (a denial is not part of a client's normal).
 */
export function checkForbidden(e: RuleContext, c: ClientState, r: DecisionRecord, t: number, _warm: boolean): void {
  const cfg = e.detections['enumeration.forbidden'];
  if (!cfg.enabled) return;
  const win = c.windows[cfg.window];
  const observed = win.total(M_DENIED);
  if (observed < cfg.minCount) return;
  const requests = win.total(M_REQ);
  const share = requests > 0 ? observed / requests : 0;
  if (share < cfg.minRatio) return;
  const distinct = hllEstimate(c.hll, BOTH_HALVES);
  if (distinct < cfg.minDistinct) return;
  // Unusual spread for this client: its own distinct-path baseline, once it has one.
  const d = c.distinct;
  const known = d.n >= e.detections['enumeration.paths'].minSamples;
  const pathThreshold = known ? threshold(cfg.minDistinct, cfg.ratio, cfg.sigma, d.mean, d.sd) : cfg.minDistinct;
  if (distinct < pathThreshold) return;
  const seconds = win.windowMs / 1000;
  e.report(c, r, 'enumeration.forbidden', observed, cfg.minCount, () => ({
    metric: 'authz_denials',
    unit: 'events',
    thresholdRule: `floor ${cfg.minCount} denials, share of requests >= ${fmt(cfg.minRatio)} (observed ${fmt(share)}) and distinct paths >= ${known ? thresholdRule(cfg.minDistinct, cfg.ratio, cfg.sigma, d.mean, d.sd) : `floor ${cfg.minDistinct} (no distinct-path baseline yet)`} (observed about ${fmt(distinct)})`,
    baseline: known ? { source: 'client', mean: d.mean, stddev: d.sd, samples: d.n, unit: `distinct paths per ${(e.distinctHalfMs * 2) / 1000} s` } : { source: 'none', mean: 0, stddev: 0, samples: d.n, unit: `distinct paths per ${(e.distinctHalfMs * 2) / 1000} s` },
    window: { seconds, start: win.start(), end: t },
    route: null,
    summary: `${fmt(observed)} authorization denials in the last ${seconds} s (${fmt(share * 100)}% of ${fmt(requests)} requests) on about ${fmt(distinct)} distinct paths, where ${known ? `this client usually requests ${fmt(d.mean)} ± ${fmt(d.sd)}` : 'the client has no usual number yet'} (path threshold ${fmt(pathThreshold)})`,
  }));
}
