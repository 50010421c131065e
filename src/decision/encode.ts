/**
 * The wire form of a decision, used by every sink (NDJSON, Kafka): an OCSF
 * 1.8.0 HTTP Activity event (class 4002, security_control profile), see
 * src/decision/ocsf/ and docs/events.md. `decodeDecision` is the exact
 * inverse, for `policy diff` and the detector.
 */
import { toOcsfHttpActivity, type OcsfHttpActivity } from './ocsf/http-activity.ts';
import { eventJson } from './ocsf/json.ts';
import { recordFromOcsf } from './ocsf/read.ts';
import type { DecisionRecord } from './record.ts';

export type DecisionEvent = OcsfHttpActivity;

export function encodeDecision(record: DecisionRecord): DecisionEvent {
  return toOcsfHttpActivity(record);
}

/**
 * The event's JSON text: one NDJSON line (without the newline), one Kafka
 * message value. Equal to JSON.stringify(encodeDecision(record)), byte for
 * byte; the parts many events share are serialized once (ocsf/json.ts).
 */
export function encodeDecisionJson(record: DecisionRecord): string {
  return eventJson(toOcsfHttpActivity(record));
}

/** Parsed event (one NDJSON line or Kafka message value) -> the record; throws OcsfReadError. */
export function decodeDecision(event: unknown): DecisionRecord {
  return recordFromOcsf(event);
}
