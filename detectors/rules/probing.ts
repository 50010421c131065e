/**
 * probing.schema: schema violations and malformed requests over the window;
 * probing.size: bodies far above the client's usual size (the engine marks
 * each outlier; this rule counts them over the window).
 */
import { fmt } from '../engine/anomaly.ts';
import { M_SIZE_OUTLIER, M_VIOLATION, type ClientState } from '../engine/client-state.ts';
import type { RuleContext } from './context.ts';
import type { DecisionRecord } from '../../src/decision/record.ts';
import { checkCount } from './count.ts';

export function checkSchema(e: RuleContext, c: ClientState, r: DecisionRecord, _t: number, warm: boolean): void {
  checkCount(e, c, r, 'probing.schema', e.detections['probing.schema'], M_VIOLATION, 'schema violations or malformed requests', warm);
}

export function checkSize(e: RuleContext, c: ClientState, r: DecisionRecord, _t: number, warm: boolean): void {
  const cfg = e.detections['probing.size'];
  if (!cfg.enabled || (cfg.requireWarmup === true && !warm)) return;
  const win = c.windows[cfg.window];
  const observed = win.total(M_SIZE_OUTLIER);
  if (observed < cfg.minCount) return;
  const seconds = win.windowMs / 1000;
  const mean = c.size.mean;
  const sd = Math.max(c.size.sd, 0.5);
  const limitBytes = Math.max(cfg.minBytes, 2 ** (mean + cfg.sigma * sd) - 1);
  e.report(c, r, 'probing.size', observed, cfg.minCount, () => ({
    metric: 'oversized_bodies',
    unit: 'requests',
    thresholdRule: `bodies above max(${cfg.minBytes} B, 2^(mean ${fmt(mean)} + ${cfg.sigma}σ (σ ${fmt(sd)})) = ${fmt(limitBytes)} B), at least ${cfg.minCount} in the window`,
    baseline: { source: 'client', mean: 2 ** mean - 1, stddev: sd, samples: c.size.n, unit: 'body bytes (geometric mean; σ in log2 units)' },
    window: { seconds, start: win.start(), end: win.end() },
    route: null,
    summary: `${fmt(observed)} request bodies above ${fmt(limitBytes)} bytes in the last ${seconds} s; this client's bodies are usually about ${fmt(2 ** mean - 1)} bytes (last one ${r.request.bytesIn} bytes)`,
  }));
}
