/**
 * What a detection rule sees: the detections' settings, the few engine constants it reads, the
 * population model's lookups and a report callback. Not the engine itself, so the rules sit below
 * the engine that runs them (no engine <-> rules import cycle), and a rule can be run against any
 * context, e.g. in a test.
 */
import type { DetectionId, DetectorConfig } from '../config.ts';
import type { Anomaly } from '../engine/anomaly.ts';
import type { ClientState } from '../engine/client-state.ts';
import type { PopulationModel } from '../engine/population.ts';
import type { DecisionRecord } from '../../src/decision/record.ts';

/** What a rule supplies beyond the numbers: everything an alert needs to explain itself. */
export type Explanation = Pick<Anomaly, 'metric' | 'unit' | 'thresholdRule' | 'baseline' | 'window' | 'route' | 'summary'>;

export interface RuleContext {
  readonly detections: DetectorConfig['detections'];
  /** Half of the distinct-paths window, ms (enumeration.paths: two half-window sketches). */
  readonly distinctHalfMs: number;
  /** Length of a population epoch, ms. */
  readonly epochMs: number;
  /** The population model's per-route distributions (read only). */
  readonly population: Pick<PopulationModel, 'routeKey' | 'statsFor'>;
  /**
   * Records an anomaly of `detection` for client `c`, evidenced by `r` (de-duplicated by the
   * engine per client and detection). `explain` is only called when it is recorded.
   */
  report(c: ClientState, r: DecisionRecord, detection: DetectionId, observed: number, threshold: number, explain: () => Explanation): void;
}
