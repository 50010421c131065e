/**
 * Decision record -> OCSF 1.8.0 Authentication (class 3002, activity Logon),
 * for SIEM logon rules (failed logons per user or per source IP). Optional
 * and derived: one per request whose authn stage ran, success or failure;
 * requests that never reached authn (block list, malformed, public routes
 * without credentials) have none. The HTTP Activity event stays the record
 * of the decision; this one links to it through metadata.correlation_uid
 * (the request id) and unmapped.palisade.decision_uid.
 */
import { createHash } from 'node:crypto';
import { CODES, type Code } from '../../errors/codes.ts';
import type { DecisionRecord } from '../record.ts';
import { isIpAddress } from './convert.ts';
import { AUTH_ACTIVITY_LOGON, AUTH_PROTOCOL, CATEGORY, CLASS, LOGON_TYPE_NETWORK, OBSERVABLE, OCSF_VERSION, SEVERITY, STATUS, USER_TYPE, type SeverityId } from './enums.ts';
import { toOcsfHttpActivity } from './http-activity.ts';
import { productOf } from './product.ts';
import type { OcsfBaseEvent, OcsfCertificate, OcsfHttpRequest, OcsfNetworkEndpoint, OcsfObservable, OcsfSession, OcsfUser } from './types.ts';

export const AUTHENTICATIONS_LOG_NAME = 'palisade.authentications';

export interface OcsfAuthentication extends OcsfBaseEvent {
  readonly class_uid: 3002;
  readonly category_uid: 3;
  readonly status_id: number;
  readonly status: string;
  readonly status_code?: string;
  readonly status_detail?: string;
  readonly user: OcsfUser;
  readonly auth_protocol_id: number;
  readonly auth_protocol: string;
  readonly logon_type_id: number;
  readonly logon_type: string;
  readonly is_remote: true;
  readonly src_endpoint?: OcsfNetworkEndpoint;
  readonly dst_endpoint: OcsfNetworkEndpoint;
  readonly service?: { readonly name: string; readonly version?: string };
  readonly certificate?: OcsfCertificate;
  readonly session?: OcsfSession;
  readonly http_request: OcsfHttpRequest;
  readonly unmapped: { readonly palisade: { readonly decision_uid: string; readonly code: Code; readonly methods: readonly string[] } };
}

type Method = 'mtls' | 'jwt' | 'introspection';

/**
 * OCSF requires the user. After a failure it is the principal an earlier
 * credential (the mTLS peer) established; with no credential at all it is
 * this placeholder, so failures still group by source IP.
 */
const UNKNOWN_USER: OcsfUser = Object.freeze({ name: 'unknown', type_id: USER_TYPE.unknown.id, type: USER_TYPE.unknown.caption });

/** Which credential a failure code is about. */
function failedMethod(code: Code): Method | null {
  if (code === 'AUTHN_PEER_REQUIRED' || code === 'AUTHN_PEER_NOT_ALLOWED') return 'mtls';
  if (code === 'AUTHN_TOKEN_INACTIVE' || code === 'AUTHN_INTROSPECTION_UNAVAILABLE') return 'introspection';
  if (code.startsWith('AUTHN_') && code !== 'AUTHN_REQUIRED') return 'jwt';
  return null;
}

function protocolOf(methods: readonly Method[]): { id: number; caption: string; name: string } {
  // Bearer tokens (JWT access tokens, RFC 7662 introspection) are OAuth 2.0; a client certificate alone has no OCSF protocol.
  if (methods.includes('jwt') || methods.includes('introspection')) return { ...AUTH_PROTOCOL.oauth2, name: AUTH_PROTOCOL.oauth2.caption };
  if (methods.includes('mtls')) return { ...AUTH_PROTOCOL.other, name: 'mTLS' };
  return { ...AUTH_PROTOCOL.unknown, name: AUTH_PROTOCOL.unknown.caption };
}

/** A stable UUID (version 8, RFC 9562) per decision: a retried publish de-duplicates like the decision itself. */
function derivedUid(decisionUid: string): string {
  const h = createHash('sha256').update(`${decisionUid}/authentication`).digest();
  h[6] = (h[6]! & 0x0f) | 0x80;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** The Authentication event of a decision, or null when the authn stage did not run for it. */
export function toOcsfAuthentication(r: DecisionRecord): OcsfAuthentication | null {
  const authn = r.stages.find((s) => s.stage === 'authn');
  if (!authn) return null;
  const failed = authn.outcome === 'deny' || authn.outcome === 'error' || (r.decidedBy === 'authn' && r.verdict === 'deny');
  const status = failed ? STATUS.failure : STATUS.success;
  const methods: Method[] = failed ? [failedMethod(r.code)].filter((m): m is Method => m !== null) : [...(r.identity?.methods ?? [])];
  const protocol = protocolOf(methods);
  // Reuse the decision mapping for the user, network, TLS and request facts: one definition of each.
  const http = toOcsfHttpActivity(r);
  const user: OcsfUser = http.actor?.user ?? UNKNOWN_USER;
  const severityId: SeverityId = !failed ? 1 : r.code === 'AUTHN_ALGORITHM_FORBIDDEN' ? 3 : 2;
  const observables: OcsfObservable[] = [];
  if (http.src_endpoint?.ip) observables.push({ name: 'src_endpoint.ip', type_id: OBSERVABLE.ip.id, type: OBSERVABLE.ip.caption, value: http.src_endpoint.ip });
  if (user.name) observables.push({ name: 'user.name', type_id: OBSERVABLE.userName.id, type: OBSERVABLE.userName.caption, value: user.name });
  const session = http.actor?.session;
  return {
    class_uid: 3002,
    class_name: CLASS.authentication.caption,
    category_uid: 3,
    category_name: CATEGORY.iam.caption,
    activity_id: AUTH_ACTIVITY_LOGON.id,
    activity_name: AUTH_ACTIVITY_LOGON.caption,
    type_uid: CLASS.authentication.uid * 100 + AUTH_ACTIVITY_LOGON.id,
    type_name: `${CLASS.authentication.caption}: ${AUTH_ACTIVITY_LOGON.caption}`,
    severity_id: severityId,
    severity: SEVERITY[severityId],
    time: r.time,
    timezone_offset: 0,
    status_id: status.id,
    status: status.caption,
    ...(failed ? { status_code: r.code, status_detail: r.detail ?? CODES[r.code].title } : {}),
    message: failed ? `authentication failed for ${user.name}: ${r.code}` : `${user.name} authenticated (${methods.join('+') || 'none'})`,
    metadata: {
      version: OCSF_VERSION,
      product: productOf('sidecar'),
      uid: derivedUid(r.id),
      correlation_uid: r.requestId,
      log_name: AUTHENTICATIONS_LOG_NAME,
      event_code: failed ? r.code : 'AUTHENTICATED',
      profiles: [],
    },
    user,
    auth_protocol_id: protocol.id,
    auth_protocol: protocol.name,
    logon_type_id: LOGON_TYPE_NETWORK.id,
    logon_type: LOGON_TYPE_NETWORK.caption,
    is_remote: true,
    ...(http.src_endpoint && isIpAddress(http.src_endpoint.ip ?? '') ? { src_endpoint: http.src_endpoint } : {}),
    dst_endpoint: http.dst_endpoint,
    ...(r.policy ? { service: { name: r.policy.name, version: r.policy.version } } : {}),
    ...(http.tls?.certificate ? { certificate: http.tls.certificate } : {}),
    ...(session ? { session } : {}),
    http_request: http.http_request,
    observables,
    unmapped: { palisade: { decision_uid: r.id, code: r.code, methods } },
  };
}
