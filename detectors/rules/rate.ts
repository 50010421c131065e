/**
 * rate.burst and rate.sustained: requests per second over a window against
 * the client's own per-second baseline. The baseline sigma is scaled to the
 * window (sigma / sqrt(seconds)): a 60 s average varies less than one second.
 */
import type { DetectionId } from '../config.ts';
import { fmt } from '../engine/anomaly.ts';
import { M_REQ, type ClientState } from '../engine/client-state.ts';
import type { RuleContext } from './context.ts';
import type { DecisionRecord } from '../../src/decision/record.ts';
import { threshold, thresholdRule } from './threshold.ts';

const RATE_IDS: readonly DetectionId[] = ['rate.burst', 'rate.sustained'];

export function checkRate(e: RuleContext, c: ClientState, r: DecisionRecord, _t: number, warm: boolean): void {
  for (const id of RATE_IDS) {
    const cfg = e.detections[id as 'rate.burst'];
    if (!cfg.enabled || (cfg.requireWarmup === true && !warm)) continue;
    // A client in warm-up has no baseline: it is judged by the cold floor alone (0 = not at all).
    const floor = warm ? cfg.minRate : (cfg.coldMinRate ?? 0);
    if (floor <= 0) continue;
    const win = c.windows[cfg.window];
    const seconds = win.windowMs / 1000;
    const observed = win.total(M_REQ) / seconds;
    if (observed < floor) continue;
    const mean = warm ? c.series.mean[M_REQ]! : 0;
    const sd = warm ? c.series.sd(M_REQ) / Math.sqrt(seconds) : 0;
    const thr = warm ? threshold(cfg.minRate, cfg.ratio, cfg.sigma, mean, sd) : floor;
    if (observed < thr) continue;
    e.report(c, r, id, observed, thr, () => ({
      metric: 'requests_per_second',
      unit: 'requests/s',
      thresholdRule: warm ? thresholdRule(cfg.minRate, cfg.ratio, cfg.sigma, mean, sd) : `cold floor ${fmt(floor)} (client in warm-up: no baseline yet)`,
      baseline: { source: warm ? 'client' : 'none', mean, stddev: sd, samples: c.series.n, unit: 'requests/s' },
      window: { seconds, start: win.start(), end: win.end() },
      route: null,
      summary: warm
        ? `${fmt(observed)} requests/s over the last ${seconds} s against this client's usual ${fmt(mean)} ± ${fmt(sd)} requests/s (threshold ${fmt(thr)})`
        : `${fmt(observed)} requests/s over the last ${seconds} s from a client in warm-up (no baseline yet; threshold ${fmt(thr)})`,
    }));
  }
}
