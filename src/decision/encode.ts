/**
 * The wire form of a decision, used by every sink (NDJSON, Kafka): an OCSF
 * 1.8.0 HTTP Activity event (class 4002, security_control profile), see
 * src/decision/ocsf/ and docs/events.md. `decodeDecision` is the exact
 * inverse, for `policy diff` and the detector.
 */
import { toOcsfHttpActivity, type OcsfHttpActivity } from './ocsf/http-activity.ts';
import { eventJson } from './ocsf/json.ts';
import { recordFromOcsf } from './ocsf/read.ts';
import { standardEventJson, toOcsfHttpActivityStandard } from './ocsf/standard.ts';
import type { DecisionRecord } from './record.ts';

export type DecisionEvent = OcsfHttpActivity;

/**
 * PALISADE_EVENT_DETAIL: "standard" (the default) = OCSF required and
 * recommended attributes plus what the detector and `policy diff` read
 * (ocsf/standard.ts); "full" = every fact of the record (ocsf/http-activity.ts).
 */
export const EVENT_DETAILS = ['standard', 'full'] as const;
export type EventDetail = (typeof EVENT_DETAILS)[number];

/** The setting's value as a level (the settings schema has already refused anything else). */
export function eventDetailOf(setting: string | undefined): EventDetail {
  return setting === 'full' ? 'full' : 'standard';
}

/** The event object; the full level unless `detail` says standard (the wire default is the sinks' business). */
export function encodeDecision(record: DecisionRecord, detail: EventDetail = 'full'): DecisionEvent {
  return detail === 'full' ? toOcsfHttpActivity(record) : (toOcsfHttpActivityStandard(record) as unknown as DecisionEvent);
}

/** The JSON-text encoder of a detail level, for sinks. */
export function decisionEncoder(detail: EventDetail): (record: DecisionRecord) => string {
  return detail === 'full' ? (r) => eventJson(toOcsfHttpActivity(r)) : standardEventJson;
}

/**
 * The event's JSON text: one NDJSON line (without the newline), one Kafka
 * message value. Equal to JSON.stringify(encodeDecision(record, detail)),
 * byte for byte; the parts many events share are serialized once
 * (ocsf/json.ts; the standard level's text is written straight from the
 * record, ocsf/standard.ts). Full detail unless told (sinks use decisionEncoder with
 * the setting, default standard).
 */
export function encodeDecisionJson(record: DecisionRecord, detail: EventDetail = 'full'): string {
  return detail === 'full' ? eventJson(toOcsfHttpActivity(record)) : standardEventJson(record);
}

/** Parsed event (one NDJSON line or Kafka message value) -> the record; throws OcsfReadError. */
export function decodeDecision(event: unknown): DecisionRecord {
  return recordFromOcsf(event);
}
