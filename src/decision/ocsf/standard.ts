/**
 * The standard detail level of the decision event (PALISADE_EVENT_DETAIL,
 * default "standard"): the same OCSF 1.8.0 HTTP Activity (4002) as the full
 * event (http-activity.ts), keeping what OCSF requires and recommends and the
 * facts the detector and `policy diff` read back (read.ts), and leaving out:
 *
 * - the caption siblings OCSF marks optional (class_name, category_name,
 *   activity_name, type_name, severity, action, disposition,
 *   observation_point), metadata.correlation_uid and metadata.event_code
 *   (the same values as http_request.uid and status_code), start_time and
 *   end_time (time and duration give them), app_protocol_name (url.scheme);
 * - observables (optional; a SIEM derives them from the attributes);
 * - per-connection facts: tls keeps its version and, of the peer
 *   certificate, what OCSF requires (issuer, serial_number) and the
 *   fingerprint; cipher, SNI, validity and SANs go, and the subject when a
 *   SPIFFE ID names the peer (that stays: as the identity's, or as the one
 *   SAN when no identity has it);
 * - repeated values: actor.user.name (= uid), actor.session.issuer (= idp),
 *   firewall_rule.name (= uid), url.url_string (scheme, host, port, path),
 *   the captions of connection_info;
 * - from unmapped.palisade: verdict, code and rule (status_code and
 *   firewall_rule carry them), per-stage timings, the exact duration and
 *   upstream time (duration and http_response.latency, whole ms), route
 *   params, an empty would_deny, a null detail; from the identity's claims
 *   those carried elsewhere (sub, iss, jti, scope, scp, client_id, azp) or
 *   only about the token's lifetime (exp, iat, nbf); the token's expiry.
 *
 * standardRecord() says exactly which record a standard event reads back to.
 */
import { CODES } from '../../errors/codes.ts';
import type { Identity, TlsFacts } from '../../pipeline/types.ts';
import type { DecisionRecord } from '../record.ts';
import { SHA256_NODE, fingerprintToOcsf, tlsVersionFromOcsf, tlsVersionToOcsf } from './convert.ts';
import { ACTION, ACTIVITY_OTHER, ACTIVITY_UNKNOWN, CLASS, DISPOSITION, FINGERPRINT_SHA256, HTTP_ACTIVITY, STATUS } from './enums.ts';
import { DECISIONS_LOG_NAME, connectionInfoOf, endpointOf, forwarded, httpRequestOf, httpResponseOf, isAlert, policyOf, severityOf, userType, type PalisadeIdentityExtra } from './http-activity.ts';
import { shared } from './json.ts';
import { productOf } from './product.ts';
import type { OcsfActor, OcsfSession, OcsfTls, OcsfUser } from './types.ts';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** JWT claims a standard event leaves out of unmapped.palisade.identity.claims (carried elsewhere, or the token's lifetime). */
export const STANDARD_DROPPED_CLAIMS: readonly string[] = ['sub', 'iss', 'jti', 'exp', 'iat', 'nbf', 'scope', 'scp', 'client_id', 'azp'];

// The product without the per-feature object: the log name says it is the sidecar's decision stream.
const PRODUCT = shared((({ feature: _f, ...p }) => p)(productOf('sidecar')));

const PROFILES = [
  [shared(Object.freeze(['security_control'])), shared(Object.freeze(['security_control', 'trace']))],
  [shared(Object.freeze(['security_control', 'host'])), shared(Object.freeze(['security_control', 'host', 'trace']))],
] as const;

/** connection_info without its caption siblings (direction, protocol_ver); by IP version (0: unknown). */
const CONNECTION_INFO: Readonly<Record<number, object>> = {
  0: shared({ direction_id: 0, protocol_num: 6, protocol_name: 'tcp' }),
  4: shared({ direction_id: 0, protocol_num: 6, protocol_name: 'tcp', protocol_ver_id: 4 }),
  6: shared({ direction_id: 0, protocol_num: 6, protocol_name: 'tcp', protocol_ver_id: 6 }),
};

const actorCache = new WeakMap<Identity, OcsfActor>();
function actorOf(identity: Identity): OcsfActor {
  let actor = actorCache.get(identity);
  if (!actor) {
    const t = userType(identity);
    const user: Mutable<OcsfUser> = { uid: identity.subject, type_id: t.id } as Mutable<OcsfUser>;
    if (identity.groups.length > 0) user.groups = identity.groups.map((name) => ({ name }));
    const a: Mutable<OcsfActor> = { user };
    if (identity.clientId !== null) a.app_uid = identity.clientId;
    if (identity.issuer !== null) a.idp = { name: identity.issuer };
    if (identity.tokenId !== null) a.session = { uid: identity.tokenId } as OcsfSession;
    actor = shared(a);
    actorCache.set(identity, actor);
  }
  return actor;
}

const identityCache = new WeakMap<Identity, PalisadeIdentityExtra>();
function identityExtraOf(identity: Identity): PalisadeIdentityExtra {
  let x = identityCache.get(identity);
  if (!x) {
    x = shared({ methods: identity.methods, spiffe_id: identity.spiffeId, scopes: identity.scopes, claims: standardClaims(identity.claims) });
    identityCache.set(identity, x);
  }
  return x;
}

function standardClaims(claims: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> {
  let out: Record<string, unknown> | null = null;
  for (const k of STANDARD_DROPPED_CLAIMS) {
    if (k in claims) {
      out ??= { ...claims };
      delete out[k];
    }
  }
  return out ?? claims;
}

/**
 * The connection's TLS facts, once per connection (tls/peer.ts caches one
 * TlsFacts per connection), in two forms: with the peer's SPIFFE ID as a SAN
 * (when no identity in the event carries it) and without. Null when OCSF
 * cannot carry the protocol exactly (the full event keeps such facts).
 */
const tlsCache = new WeakMap<TlsFacts, readonly [OcsfTls | null, OcsfTls | null]>();
function tlsOf(tls: TlsFacts, withSpiffe: boolean): OcsfTls | null {
  let m = tlsCache.get(tls);
  if (m === undefined) {
    m = [null, null];
    if (tls.protocol !== null && tlsVersionFromOcsf(tlsVersionToOcsf(tls.protocol)) === tls.protocol) {
      // Cipher and SNI are the connection's, like the certificate's details: the full level has them.
      const out: Mutable<OcsfTls> = { version: tlsVersionToOcsf(tls.protocol) };
      const p = tls.peer;
      let withSan: Mutable<OcsfTls> = out;
      if (p) {
        // Without a SPIFFE ID the subject names the peer (policy diff replays the stages before authn with it).
        // Only a real SHA-256 is labelled so (as in the full event, which keeps any other form exactly).
        const cert = {
          ...(p.spiffeId === null ? { subject: p.subject } : {}),
          issuer: p.issuer,
          serial_number: p.serialNumber,
          ...(SHA256_NODE.test(p.fingerprint256) ? { fingerprints: [{ algorithm_id: FINGERPRINT_SHA256.id, value: fingerprintToOcsf(p.fingerprint256) }] } : {}),
        };
        out.certificate = cert as unknown as NonNullable<OcsfTls['certificate']>;
        if (p.spiffeId !== null) withSan = { ...out, certificate: { ...cert, sans: [{ name: p.spiffeId, type: 'URI' }] } as unknown as NonNullable<OcsfTls['certificate']> };
      }
      const plain = shared(out);
      m = [plain, withSan === out ? plain : shared(withSan)];
    }
    tlsCache.set(tls, m);
  }
  return m[withSpiffe ? 1 : 0];
}

/** Does the event need the peer's SPIFFE ID as a SAN (no identity carrying that same ID)? */
function needsSan(r: DecisionRecord): boolean {
  const id = r.tls?.peer?.spiffeId ?? null;
  return id !== null && r.identity?.spiffeId !== id;
}

export function toOcsfHttpActivityStandard(r: DecisionRecord): Record<string, unknown> {
  const exact: Record<string, unknown> = {};
  const method = r.request.method;
  const known = HTTP_ACTIVITY[method];
  const activity = known ?? (method === '' ? ACTIVITY_UNKNOWN : ACTIVITY_OTHER);
  const severityId = severityOf(r);
  const spec = CODES[r.code];
  const status = r.code === 'ALLOWED' ? STATUS.success : STATUS.failure;
  const duration = Math.round(r.durationMs);

  // url_string repeats scheme, hostname, port and path: the standard event leaves it out.
  const request = httpRequestOf(r, known !== undefined, exact, false);
  const response = httpResponseOf(r);

  const src = endpointOf(r.client.ip, r.client.port, exact, 'client');
  const dst = endpointOf(r.server.ip, r.server.port, exact, 'server') ?? { svc_name: 'palisade' };
  const tls = r.tls ? tlsOf(r.tls, needsSan(r)) : null;
  const actor = r.identity ? actorOf(r.identity) : undefined;

  // For an unknown method the request's own method is kept (the full event puts it in activity_name).
  if (!known && method !== '') exact['request.method'] = method;
  const extra: Record<string, unknown> = { stage: r.decidedBy };
  if (r.wouldDeny.length > 0) extra['would_deny'] = r.wouldDeny;
  if (r.request.route !== null) extra['route'] = r.request.route;
  if (r.identity) extra['identity'] = identityExtraOf(r.identity);
  if (r.detail !== null) extra['detail'] = r.detail;
  // What the quota aggregator counts: kept at every detail level.
  if (r.quotas) extra['quotas'] = r.quotas.map((q) => ({ rule: q.rule, key: q.key, limit: q.limit, window_ms: q.windowMs }));
  for (const _ in exact) {
    extra['exact'] = exact;
    break;
  }

  const e: Record<string, unknown> = {
    class_uid: 4002,
    category_uid: 4,
    activity_id: activity.id,
    type_uid: CLASS.httpActivity.uid * 100 + activity.id,
    severity_id: severityId,
    time: r.time,
    duration,
    timezone_offset: 0,
    status_id: status.id,
    status: status.caption,
    status_code: r.code,
    status_detail: r.detail ?? spec.title,
    message: `${method || '-'} ${r.request.path || '-'} -> ${r.response.status} ${r.code}`,
    metadata: { version: '1.8.0', product: PRODUCT, uid: r.id, log_name: DECISIONS_LOG_NAME, profiles: PROFILES[actor ? 1 : 0][r.traceId !== null ? 1 : 0] },
    action_id: (forwarded(r) ? ACTION.allowed : ACTION.denied).id,
    disposition_id: DISPOSITION[spec.disposition].id,
    is_alert: isAlert(r),
  };
  // policy diff tells records made under another policy by its hash.
  if (r.policy) e['policy'] = policyOf(r.policy);
  if (r.rule !== null) e['firewall_rule'] = { uid: r.rule };
  if (actor) e['actor'] = actor;
  if (src) e['src_endpoint'] = src;
  e['dst_endpoint'] = dst;
  e['connection_info'] = CONNECTION_INFO[connectionInfoOf(r.client.ip).protocol_ver_id ?? 0] ?? CONNECTION_INFO[0];
  if (tls) e['tls'] = tls;
  e['http_request'] = request;
  e['http_response'] = response;
  if (r.traceId !== null) e['trace'] = { uid: r.traceId };
  e['unmapped'] = { palisade: extra };
  return e;
}

/**
 * The record a standard event reads back to (decodeDecision): the original
 * with what the standard level leaves out set to what the reader gives
 * instead. The detector and `policy diff` read only fields this keeps.
 */
export function standardRecord(r: DecisionRecord): DecisionRecord {
  const tls = r.tls ? tlsOf(r.tls, needsSan(r)) : null;
  const peer = r.tls?.peer ?? null;
  return {
    ...r,
    durationMs: Math.round(r.durationMs),
    upstreamMs: r.upstreamMs === null ? null : Math.round(r.upstreamMs),
    stages: [],
    request: { ...r.request, params: null },
    identity: r.identity ? { ...r.identity, claims: standardClaims(r.identity.claims), expiresAt: null } : null,
    tls:
      r.tls && tls
        ? {
            ...r.tls,
            cipher: null,
            sni: null,
            // The SPIFFE ID comes back from the SAN, or else from the identity's.
            peer:
              peer && tls.certificate
                ? {
                    ...peer,
                    subject: peer.spiffeId === null ? peer.subject : '',
                    fingerprint256: SHA256_NODE.test(peer.fingerprint256) ? peer.fingerprint256 : '',
                    validFrom: '',
                    validTo: '',
                    spiffeId: needsSan(r) || peer.spiffeId === null ? peer.spiffeId : (r.identity?.spiffeId ?? null),
                  }
                : null,
          }
        : null,
  };
}
