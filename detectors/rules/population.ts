/**
 * population.*: one client's count on one route in a sliding epoch against
 * the distribution of all clients' epochs on that route (log scale; falls
 * back to all routes while the route is new). Needs no history of the client
 * itself, so it also covers clients still in warm-up.
 */
import type { DetectionId } from '../config.ts';
import { fmt } from '../engine/anomaly.ts';
import { M_FAIL, M_NOT_FOUND, M_REQ, M_VIOLATION, SERIES_WIDTH, type ClientState, type RouteCounts } from '../engine/client-state.ts';
import type { RuleContext } from './context.ts';
import type { DecisionRecord } from '../../src/decision/record.ts';

const IDS: readonly (readonly [DetectionId, number, string])[] = [
  ['population.requests', M_REQ, 'requests'],
  ['population.auth-failures', M_FAIL, 'authentication failures'],
  ['population.not-found', M_NOT_FOUND, '404 responses'],
  ['population.violations', M_VIOLATION, 'schema violations'],
];

export function checkPopulation(e: RuleContext, c: ClientState, r: DecisionRecord, t: number, rc: RouteCounts, fail: boolean, nf: boolean, viol: boolean): void {
  const epochMs = e.epochMs;
  const elapsed = (t - rc[0]! * epochMs) / epochMs;
  const carry = elapsed >= 1 ? 0 : 1 - elapsed;
  for (const [id, slot, what] of IDS) {
    if (slot === M_FAIL && !fail) continue;
    if (slot === M_NOT_FOUND && !nf) continue;
    if (slot === M_VIOLATION && !viol) continue;
    const cfg = e.detections[id as 'population.requests'];
    if (!cfg.enabled) continue;
    // Sliding epoch: this epoch so far plus the unexpired share of the previous one.
    const observed = rc[1 + slot]! + rc[1 + SERIES_WIDTH + slot]! * carry;
    if (observed < cfg.minCount) continue;
    const route = e.population.routeKey(r.request.route);
    const model = e.population.statsFor(route, slot);
    if (model === null) continue;
    const s = model.stats;
    const typical = Math.expm1(s.mean);
    const limit = Math.expm1(s.mean + cfg.sigma * s.sd);
    const thr = Math.max(cfg.minCount, cfg.ratio * typical, limit);
    if (observed < thr) continue;
    const seconds = epochMs / 1000;
    e.report(c, r, id, observed, thr, () => ({
      metric: `${['requests', 'auth_failures', 'not_found', 'violations'][slot]}_per_client_on_route`,
      unit: 'events',
      thresholdRule: `max(floor ${cfg.minCount}, ${fmt(cfg.ratio)} × typical client ${fmt(typical)} = ${fmt(cfg.ratio * typical)}, exp(mean + ${fmt(cfg.sigma)}σ) - 1 = ${fmt(limit)}) on the log scale over clients' ${seconds} s epochs`,
      baseline: { source: 'population', mean: typical, stddev: s.sd, samples: s.n, unit: `${what} per client per ${seconds} s on route ${model.route} (geometric mean; σ in ln units)` },
      window: { seconds, start: t - seconds * 1000, end: t },
      route,
      summary: `${fmt(observed)} ${what} on ${route} in the last ${seconds} s, where a typical client makes ${fmt(typical)} (threshold ${fmt(thr)}, population of ${fmt(s.n)} client epochs${model.route !== route ? ' over all routes' : ''})`,
    }));
  }
}
