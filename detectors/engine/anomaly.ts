/**
 * An anomaly explains itself: which detection, the metric, the client's
 * baseline (or the population's), the observed value, the window and the
 * threshold, so an alert can be judged without re-running anything.
 */
import type { DetectionId, Severity } from '../config.ts';
import type { ClientKind } from './observation.ts';

export interface AnomalyBaseline {
  /** 'client': the client's own history; 'population': all clients on the route; 'none': absolute floor only. */
  readonly source: 'client' | 'population' | 'none';
  readonly mean: number;
  readonly stddev: number;
  /** Samples behind the baseline (seconds, epochs or requests, per detection). */
  readonly samples: number;
  readonly unit: string;
}

export interface Anomaly {
  readonly detection: DetectionId;
  readonly severity: Severity;
  /** observed / threshold; >= 1. */
  readonly score: number;
  readonly metric: string;
  readonly unit: string;
  readonly observed: number;
  readonly threshold: number;
  /** How the threshold was formed, e.g. "max(floor 30, 4 × mean 2.1, mean + 6σ 14.2)". */
  readonly thresholdRule: string;
  readonly baseline: AnomalyBaseline;
  readonly window: { readonly seconds: number; readonly start: number; readonly end: number };
  /** Route template the detection is about (population detections), else null. */
  readonly route: string | null;
  readonly client: {
    readonly key: string;
    readonly kind: ClientKind;
    readonly ip: string;
    readonly subject: string | null;
    readonly spiffeId: string | null;
    readonly tokenId: string | null;
  };
  /** Id of the decision event that crossed the threshold (evidence). */
  readonly evidenceId: string;
  /** Event time of that decision, epoch ms. */
  readonly time: number;
  /** One sentence for humans. */
  readonly summary: string;
}

export const SEVERITY_RANK: Readonly<Record<Severity, number>> = { low: 0, medium: 1, high: 2, critical: 3 };

export function severityOf(score: number, t: { readonly medium: number; readonly high: number; readonly critical: number }): Severity {
  if (score >= t.critical) return 'critical';
  if (score >= t.high) return 'high';
  if (score >= t.medium) return 'medium';
  return 'low';
}

/** Compact number for summaries: 3 significant digits. */
export function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Math.abs(n) >= 100) return String(Math.round(n));
  return String(Number(n.toPrecision(3)));
}
