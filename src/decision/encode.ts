/**
 * The wire form of a decision. The OCSF mapping (src/decision/ocsf/) replaces
 * this identity encoding.
 */
import type { DecisionRecord } from './record.ts';

export function encodeDecision(record: DecisionRecord): unknown {
  return record;
}
