/**
 * What the engine reads from one decision record: who (the same key the Kafka
 * sink partitions by: identity subject, else client IP) and a few facts as
 * bit flags. Codes map to flags through a table built once.
 */
import { CODES, type Code } from '../../src/errors/codes.ts';
import type { DecisionRecord } from '../../src/decision/record.ts';

/**
 * An authentication failure: a missing, forged, expired or wrong-issuer credential (AUTHN_*, and
 * an upstream's 401). Evidence of credential abuse.
 */
export const F_AUTH_FAIL = 1;
export const F_NOT_FOUND = 2;
export const F_VIOLATION = 4;
/** Refused by the block list: a consequence of the detector, not new evidence. */
export const F_BLOCKED = 8;
/**
 * An authorization denial (AUTHZ_*, and an upstream's 403): the identity may well be valid and
 * the policy deny it, so this is not credential abuse; only enumeration.forbidden reads it,
 * together with many distinct paths.
 */
export const F_DENIED = 16;
/** Any of the failures the blast-radius guard watches across the population. */
export const F_ANY_FAILURE = F_AUTH_FAIL | F_DENIED | F_NOT_FOUND | F_VIOLATION;

const VIOLATION_CODES: readonly Code[] = [
  'SCHEMA_VIOLATION',
  'BODY_MALFORMED',
  'BODY_LIMIT_EXCEEDED',
  'BODY_FORBIDDEN_KEY',
  'BODY_DUPLICATE_KEY',
  'BODY_TOO_LARGE',
  'CONTENT_TYPE_NOT_ALLOWED',
  'PATH_INVALID',
  'URL_TOO_LONG',
  'HEADERS_TOO_LARGE',
  'REQUEST_MALFORMED',
];
// The sidecar's own outages are not the client's failures.
const NOT_CLIENT_FAULT: readonly Code[] = ['AUTHN_JWKS_UNAVAILABLE', 'AUTHN_INTROSPECTION_UNAVAILABLE'];

const CODE_FLAGS = new Map<string, number>();
for (const code of Object.keys(CODES) as Code[]) {
  let f = 0;
  if (code.startsWith('AUTHN_') && !NOT_CLIENT_FAULT.includes(code)) f |= F_AUTH_FAIL;
  if (code.startsWith('AUTHZ_')) f |= F_DENIED;
  if (code === 'ROUTE_UNKNOWN') f |= F_NOT_FOUND;
  if (VIOLATION_CODES.includes(code)) f |= F_VIOLATION;
  if (code === 'BLOCKED') f |= F_BLOCKED;
  CODE_FLAGS.set(code, f);
}

/** Flags of a decision: its code, plus what the upstream answered for allowed requests. */
export function flagsOf(r: DecisionRecord): number {
  let f = CODE_FLAGS.get(r.code) ?? 0;
  if (r.verdict === 'allow') {
    const s = r.response.status;
    if (s === 401) f |= F_AUTH_FAIL;
    else if (s === 403) f |= F_DENIED;
    else if (s === 404) f |= F_NOT_FOUND;
  }
  return f;
}

/** The reason code of a failed decision: its stable code, or the upstream's status for an allowed one. */
export function failureCodeOf(r: DecisionRecord): string {
  return r.verdict === 'allow' ? `UPSTREAM_STATUS_${r.response.status}` : r.code;
}

export type ClientKind = 'identity' | 'ip';

/** The client key of a decision, as the Kafka sink keys events: identity subject, else client IP. */
export function clientKeyOf(r: DecisionRecord): string {
  return r.identity?.subject || r.client.ip;
}

export function clientKindOf(r: DecisionRecord): ClientKind {
  return r.identity?.subject ? 'identity' : 'ip';
}
