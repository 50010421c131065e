/**
 * The one threshold shape every baseline rule uses: the observed value must
 * clear an absolute floor, a multiple of the baseline mean, and a control
 * limit (mean + k sigma). max() of the three = all must hold, which keeps a
 * quiet client's tiny sigma from turning noise into alerts.
 */
import { fmt } from '../engine/anomaly.ts';

export function threshold(floor: number, ratio: number, sigma: number, mean: number, sd: number): number {
  return Math.max(floor, ratio * mean, mean + sigma * sd);
}

export function thresholdRule(floor: number, ratio: number, sigma: number, mean: number, sd: number): string {
  return `max(floor ${fmt(floor)}, ${fmt(ratio)} × mean ${fmt(mean)} = ${fmt(ratio * mean)}, mean + ${fmt(sigma)}σ (σ ${fmt(sd)}) = ${fmt(mean + sigma * sd)})`;
}
