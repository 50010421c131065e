/**
 * Decision record -> OCSF 1.8.0 HTTP Activity (class 4002) with the
 * security_control profile: the one event every request yields, on every
 * sink. Facts OCSF has a place for go there (so a SIEM needs no Palisade
 * knowledge); the sidecar's own facts (stage, reason code, per-stage
 * timings, would_deny, route, the identity's claims for `policy diff`) go in
 * unmapped.palisade, and read.ts turns the event back into the exact record.
 *
 * Runs when a sink takes the record, after the response is sent; still one
 * pass, no JSON round trips, no regexes except for the rare odd value.
 * Never carries a token, cookie, query string or header other than
 * Content-Type: the record does not have them.
 */
import { isIP } from 'node:net';
import { CODES, type Code } from '../../errors/codes.ts';
import type { Decider, Identity, StageTiming, TlsFacts, WouldDeny } from '../../pipeline/types.ts';
import type { DecisionRecord } from '../record.ts';
import { SHA256_NODE, certTimeFromMs, certTimeToMs, fingerprintToOcsf, isIpAddress, joinHost, splitHost, tlsVersionFromOcsf, tlsVersionToOcsf } from './convert.ts';
import {
  ACTION,
  ACTIVITY_OTHER,
  ACTIVITY_UNKNOWN,
  CATEGORY,
  CLASS,
  DIRECTION_UNKNOWN,
  DISPOSITION,
  FINGERPRINT_SHA256,
  HTTP_ACTIVITY,
  IP_VERSION,
  OBSERVABLE,
  OBSERVATION_POINT_DESTINATION,
  OCSF_VERSION,
  SEVERITY,
  STATUS,
  USER_TYPE,
  type SeverityId,
} from './enums.ts';
import { shared } from './json.ts';
import { productOf } from './product.ts';
import type {
  OcsfActor,
  OcsfBaseEvent,
  OcsfCertificate,
  OcsfConnectionInfo,
  OcsfFirewallRule,
  OcsfHttpRequest,
  OcsfHttpResponse,
  OcsfNetworkEndpoint,
  OcsfObservable,
  OcsfPolicy,
  OcsfSession,
  OcsfTls,
  OcsfUser,
  OcsfTrace,
  OcsfUrl,
} from './types.ts';

export const DECISIONS_LOG_NAME = 'palisade.decisions';

/** Identity facts OCSF has no attribute for; kept so `policy diff` can replay authorization. */
export interface PalisadeIdentityExtra {
  readonly methods: Identity['methods'];
  readonly spiffe_id: string | null;
  readonly scopes: readonly string[];
  readonly claims: Readonly<Record<string, unknown>>;
}

/** unmapped.palisade: the sidecar's own facts, snake_case like the rest of the event. */
export interface PalisadeDecisionExtra {
  readonly verdict: DecisionRecord['verdict'];
  /** The stage (or layer) that decided. */
  readonly stage: Decider;
  readonly code: Code;
  readonly rule: string | null;
  readonly would_deny: readonly WouldDeny[];
  /** Per-stage timings, microseconds. */
  readonly stages: readonly StageTiming[];
  /** Exact sidecar time, fractional milliseconds (`duration` is the rounded OCSF value). */
  readonly duration_ms: number;
  readonly upstream_ms: number | null;
  readonly route: string | null;
  readonly params: Readonly<Record<string, string>> | null;
  readonly identity?: PalisadeIdentityExtra;
  readonly detail: string | null;
  /** Fleet-wide quotas the request counted against (the record's `quotas`); absent when none applied. */
  readonly quotas?: readonly { readonly rule: string; readonly key: string; readonly limit: number; readonly window_ms: number }[];
  /** Record fields whose mapped OCSF form would not give them back exactly (rare: odd Host, non-IP X-Forwarded-For). Keys are record paths. */
  readonly exact?: Readonly<Record<string, unknown>>;
}

export interface OcsfHttpActivity extends OcsfBaseEvent {
  readonly class_uid: 4002;
  readonly category_uid: 4;
  readonly duration: number;
  readonly start_time: number;
  readonly end_time: number;
  readonly status_id: number;
  readonly status: string;
  readonly status_code: string;
  readonly status_detail: string;
  readonly app_protocol_name: 'http' | 'https';
  readonly observation_point_id: number;
  readonly observation_point: string;
  readonly connection_info: OcsfConnectionInfo;
  readonly src_endpoint?: OcsfNetworkEndpoint;
  readonly dst_endpoint: OcsfNetworkEndpoint;
  readonly http_request: OcsfHttpRequest;
  readonly http_response: OcsfHttpResponse;
  readonly tls?: OcsfTls;
  /** host profile. */
  readonly actor?: OcsfActor;
  /** trace profile. */
  readonly trace?: OcsfTrace;
  // security_control profile
  readonly action_id: number;
  readonly action: string;
  readonly disposition_id: number;
  readonly disposition: string;
  readonly is_alert: boolean;
  readonly policy?: OcsfPolicy;
  readonly firewall_rule?: OcsfFirewallRule;
  readonly unmapped: { readonly palisade: PalisadeDecisionExtra };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Codes that are attack signals rather than client mistakes: a SIEM should look (is_alert). */
const ALERT_CODES: ReadonlySet<Code> = new Set<Code>(['BLOCKED', 'BODY_FORBIDDEN_KEY', 'AUTHN_ALGORITHM_FORBIDDEN']);

/** True when the policy let the request through to the upstream (even if it then failed). */
export function forwarded(r: DecisionRecord): boolean {
  return r.verdict === 'allow' || r.decidedBy === 'forward' || r.decidedBy === 'upstream';
}

/**
 * Informational: allowed. Low: allowed with an audit-mode would-deny, or a
 * denied request (client error, failed credential, rule, rate limit, upstream
 * failure). Medium: an attack signal (block list, prototype pollution, alg
 * confusion) or the sidecar failing closed (no policy, key set or
 * introspection unavailable, internal error).
 */
export function severityOf(r: DecisionRecord): SeverityId {
  if (r.verdict === 'allow') return r.wouldDeny.length > 0 ? 2 : 1;
  if (ALERT_CODES.has(r.code)) return 3;
  if (CODES[r.code].disposition === 'error' && r.decidedBy !== 'upstream') return 3;
  return 2;
}

export function isAlert(r: DecisionRecord): boolean {
  return r.verdict === 'deny' && ALERT_CODES.has(r.code);
}

export function userType(identity: Identity): { id: number; caption: string } {
  if (identity.subject.startsWith('spiffe://')) return USER_TYPE.service;
  // Client-credentials tokens name the client as their subject: a service, not a person.
  if (identity.clientId !== null && identity.clientId === identity.subject) return USER_TYPE.service;
  return identity.methods.includes('jwt') || identity.methods.includes('introspection') ? USER_TYPE.user : USER_TYPE.unknown;
}

// authn memoizes one Identity per connection (mTLS) or token; map it once too (shared like the TLS mapping).
const actorCache = new WeakMap<Identity, OcsfActor>();

function actorOf(identity: Identity): OcsfActor {
  let actor = actorCache.get(identity);
  if (!actor) {
    actor = mapActor(identity);
    actorCache.set(identity, actor);
  }
  return actor;
}

function mapActor(identity: Identity): OcsfActor {
  const t = userType(identity);
  const user: Mutable<OcsfUser> = { uid: identity.subject, name: identity.subject, type_id: t.id, type: t.caption };
  if (identity.groups.length > 0) user.groups = identity.groups.map((name) => ({ name }));
  const actor: Mutable<OcsfActor> = { user };
  if (identity.clientId !== null) actor.app_uid = identity.clientId;
  if (identity.issuer !== null) actor.idp = { name: identity.issuer, issuer: identity.issuer };
  // The token's id (jti, never the token) and expiry; a fractional exp has no
  // timestamp_t form and is kept in unmapped.palisade.exact instead.
  const exp = identity.expiresAt !== null && Number.isInteger(identity.expiresAt) ? identity.expiresAt * 1000 : null;
  if (identity.tokenId !== null || exp !== null) {
    const session: Mutable<OcsfSession> = {};
    if (identity.tokenId !== null) session.uid = identity.tokenId;
    if (identity.issuer !== null) session.issuer = identity.issuer;
    if (exp !== null) session.expiration_time = exp;
    actor.session = session;
  }
  return shared(actor);
}

interface TlsMapping {
  readonly tls: OcsfTls | undefined;
  /** Record paths (under tls.) whose OCSF form does not give them back exactly. */
  readonly exact: readonly (readonly [string, unknown])[];
}

// tls/peer.ts caches one TlsFacts per connection, so a keep-alive connection
// converts its certificate facts once, not once per request. The events of
// one connection share these objects (typed readonly; not frozen, which
// costs more than the conversion it saves): sinks serialize, nobody mutates.
const tlsCache = new WeakMap<TlsFacts, TlsMapping>();

function tlsOf(tls: TlsFacts, exact: Record<string, unknown>): OcsfTls | undefined {
  let m = tlsCache.get(tls);
  if (!m) {
    m = mapTls(tls);
    tlsCache.set(tls, m);
  }
  for (const [path, value] of m.exact) exact[path] = value;
  return m.tls;
}

function mapTls(tls: TlsFacts): TlsMapping {
  // OCSF requires tls.version; without it the facts live only in unmapped.
  if (tls.protocol === null) return { tls: undefined, exact: [['tls', tls]] };
  const exact: [string, unknown][] = [];
  const version = tlsVersionToOcsf(tls.protocol);
  if (tlsVersionFromOcsf(version) !== tls.protocol) exact.push(['tls.protocol', tls.protocol]);
  const out: Mutable<OcsfTls> = { version };
  if (tls.cipher !== null) out.cipher = tls.cipher;
  if (tls.sni !== null) out.sni = tls.sni;
  const p = tls.peer;
  if (p) {
    const cert: Mutable<OcsfCertificate> = { subject: p.subject, issuer: p.issuer, serial_number: p.serialNumber };
    // Only a real SHA-256 (32 bytes, as Node prints it) is labelled SHA-256;
    // that form always converts back (fingerprintFromOcsf), anything else is kept as is.
    if (SHA256_NODE.test(p.fingerprint256)) cert.fingerprints = [{ algorithm_id: FINGERPRINT_SHA256.id, algorithm: FINGERPRINT_SHA256.caption, value: fingerprintToOcsf(p.fingerprint256) }];
    else exact.push(['tls.peer.fingerprint256', p.fingerprint256]);
    const from = certTimeToMs(p.validFrom);
    if (from !== null) cert.created_time = from;
    if (from === null || certTimeFromMs(from) !== p.validFrom) exact.push(['tls.peer.validFrom', p.validFrom]);
    const to = certTimeToMs(p.validTo);
    if (to !== null) cert.expiration_time = to;
    if (to === null || certTimeFromMs(to) !== p.validTo) exact.push(['tls.peer.validTo', p.validTo]);
    if (p.spiffeId !== null) cert.sans = [{ name: p.spiffeId, type: 'URI' }];
    out.certificate = cert;
  }
  return { tls: shared(out), exact };
}

/**
 * src_endpoint / dst_endpoint ({ ip, port }), or undefined with the odd values kept in `exact`.
 * `isIp`: the address check (the standard level passes one that remembers recent addresses).
 */
export function endpointOf(ip: string, port: number, exact: Record<string, unknown>, path: 'client' | 'server', isIp: (value: string) => boolean = isIpAddress): OcsfNetworkEndpoint | undefined {
  if (isIp(ip)) return { ip, port };
  // An endpoint needs an ip (or a name); an unknown one (socket already gone) is left out.
  if (ip !== '') exact[`${path}.ip`] = ip;
  if (port !== 0) exact[`${path}.port`] = port;
  return undefined;
}

function urlOf(r: DecisionRecord, exact: Record<string, unknown>): OcsfUrl | undefined {
  const { host, path, scheme } = r.request;
  if (host === '' && path === '') return undefined;
  const url: Mutable<OcsfUrl> = { scheme };
  if (host !== '') {
    const parts = splitHost(host);
    if (joinHost(parts.hostname, parts.port) !== host) exact['request.host'] = host;
    url.url_string = `${scheme}://${host}${path}`;
    if (parts.hostname !== '') url.hostname = parts.hostname;
    if (parts.port !== undefined) url.port = parts.port;
  }
  if (path !== '') url.path = path;
  return url;
}

function observablesOf(e: Mutable<OcsfHttpActivity>): OcsfObservable[] {
  const out: OcsfObservable[] = [];
  const add = (name: string, t: { id: number; caption: string }, value: string | undefined) => {
    if (value !== undefined && value !== '') out.push({ name, type_id: t.id, type: t.caption, value });
  };
  // The client-side values a SIEM pivots on. Not the sidecar's own address, nor
  // values already inside another observable (hostname is in the URL): a quarter
  // of the event was observables, and every consumer parses every byte.
  add('src_endpoint.ip', OBSERVABLE.ip, e.src_endpoint?.ip);
  for (const ip of e.http_request.x_forwarded_for ?? []) add('http_request.x_forwarded_for', OBSERVABLE.ip, ip);
  add('actor.user.name', OBSERVABLE.userName, e.actor?.user?.name);
  add('http_request.url.url_string', OBSERVABLE.url, e.http_request.url?.url_string);
  add('http_request.user_agent', OBSERVABLE.userAgent, e.http_request.user_agent);
  add('tls.certificate.fingerprints.value', OBSERVABLE.hash, e.tls?.certificate?.fingerprints?.[0]?.value);
  return out;
}

const SIDECAR_PRODUCT = shared(productOf('sidecar'));

// metadata.profiles: four possible lists, [has actor][has trace id].
const PROFILES = [
  [shared(Object.freeze(['security_control'])), shared(Object.freeze(['security_control', 'trace']))],
  [shared(Object.freeze(['security_control', 'host'])), shared(Object.freeze(['security_control', 'host', 'trace']))],
] as const;

// unmapped.palisade.identity, once per Identity object (authn memoizes those per connection or token).
const identityExtraCache = new WeakMap<Identity, PalisadeIdentityExtra>();

function identityExtraOf(identity: Identity): PalisadeIdentityExtra {
  let x = identityExtraCache.get(identity);
  if (!x) {
    x = shared({ methods: identity.methods, spiffe_id: identity.spiffeId, scopes: identity.scopes, claims: identity.claims });
    identityExtraCache.set(identity, x);
  }
  return x;
}

// The active policy changes rarely: every event of one policy shares its OCSF form.
let lastPolicy: { readonly key: NonNullable<DecisionRecord['policy']>; readonly ocsf: OcsfPolicy } | null = null;

function policyOf(p: NonNullable<DecisionRecord['policy']>): OcsfPolicy {
  const last = lastPolicy;
  if (last && (last.key === p || (last.key.hash === p.hash && last.key.name === p.name && last.key.version === p.version && last.key.keyId === p.keyId))) return last.ocsf;
  const signature = p.keyId !== undefined ? { verified: true, key_id: p.keyId } : { verified: false };
  const ocsf: OcsfPolicy = shared({ name: p.name, uid: p.hash, version: p.version, is_applied: true, data: { signature } });
  lastPolicy = { key: p, ocsf };
  return ocsf;
}

/**
 * The full event's http_request object (the standard level writes its own, leaner one in
 * standard.ts). Facts its OCSF form would not give back exactly go into `exact`.
 */
function httpRequestOf(r: DecisionRecord, knownMethod: boolean, exact: Record<string, unknown>): OcsfHttpRequest {
  const request: Mutable<OcsfHttpRequest> = { uid: r.requestId };
  if (knownMethod) request.http_method = r.request.method;
  const url = urlOf(r, exact);
  if (url) request.url = url;
  if (r.request.httpVersion !== '') request.version = r.request.httpVersion;
  if (r.request.userAgent !== null) request.user_agent = r.request.userAgent;
  const xff = r.client.forwardedFor;
  if (xff.length > 0) {
    const ips = xff.filter(isIpAddress);
    if (ips.length > 0) request.x_forwarded_for = ips;
    if (ips.length !== xff.length) exact['client.forwardedFor'] = xff;
  }
  if (r.request.contentType !== null) request.http_headers = [{ name: 'Content-Type', value: r.request.contentType }];
  request.body_length = r.request.bytesIn;
  return request;
}

/** The full event's http_response object (the standard level keeps the status code only). */
function httpResponseOf(r: DecisionRecord): OcsfHttpResponse {
  const response: Mutable<OcsfHttpResponse> = { code: r.response.status, length: r.response.bytesOut };
  if (r.upstreamMs !== null) response.latency = Math.round(r.upstreamMs);
  return response;
}

export function toOcsfHttpActivity(r: DecisionRecord): OcsfHttpActivity {
  const exact: Record<string, unknown> = {};
  const method = r.request.method;
  const known = HTTP_ACTIVITY[method];
  const activity = known ?? (method === '' ? ACTIVITY_UNKNOWN : ACTIVITY_OTHER);
  const severityId = severityOf(r);
  const spec = CODES[r.code];
  const disposition = DISPOSITION[spec.disposition];
  const action = forwarded(r) ? ACTION.allowed : ACTION.denied;
  const status = r.code === 'ALLOWED' ? STATUS.success : STATUS.failure;
  const duration = Math.round(r.durationMs);

  const request = httpRequestOf(r, known !== undefined, exact);
  const response = httpResponseOf(r);

  const src = endpointOf(r.client.ip, r.client.port, exact, 'client');
  // The network class needs src_endpoint or dst_endpoint: when the socket is
  // already gone, the sidecar names itself as the destination service.
  const dst = endpointOf(r.server.ip, r.server.port, exact, 'server') ?? { svc_name: 'palisade' };
  const tls = r.tls ? tlsOf(r.tls, exact) : undefined;

  let actor: OcsfActor | undefined;
  if (r.identity) {
    actor = actorOf(r.identity);
    if (r.identity.expiresAt !== null && !Number.isInteger(r.identity.expiresAt)) exact['identity.expiresAt'] = r.identity.expiresAt;
  }
  // actor belongs to the host profile in network classes; the trace id to the trace profile.
  const profiles = PROFILES[actor ? 1 : 0][r.traceId !== null ? 1 : 0];

  const extra: Mutable<PalisadeDecisionExtra> = {
    verdict: r.verdict,
    stage: r.decidedBy,
    code: r.code,
    rule: r.rule,
    would_deny: r.wouldDeny,
    stages: r.stages,
    duration_ms: r.durationMs,
    upstream_ms: r.upstreamMs,
    route: r.request.route,
    params: r.request.params,
    detail: r.detail,
  };
  if (r.identity) extra.identity = identityExtraOf(r.identity);
  if (r.quotas) extra.quotas = r.quotas.map((q) => ({ rule: q.rule, key: q.key, limit: q.limit, window_ms: q.windowMs }));
  for (const _ in exact) {
    extra.exact = exact;
    break;
  }

  const e: Mutable<OcsfHttpActivity> = {
    class_uid: 4002,
    class_name: CLASS.httpActivity.caption,
    category_uid: 4,
    category_name: CATEGORY.network.caption,
    activity_id: activity.id,
    // For "Other" the caption sibling carries the source's own value: the method.
    activity_name: known || method === '' ? activity.caption : method,
    type_uid: CLASS.httpActivity.uid * 100 + activity.id,
    type_name: `${CLASS.httpActivity.caption}: ${activity.caption}`,
    severity_id: severityId,
    severity: SEVERITY[severityId],
    time: r.time,
    start_time: r.time,
    end_time: r.time + duration,
    duration,
    timezone_offset: 0,
    status_id: status.id,
    status: status.caption,
    status_code: r.code,
    status_detail: r.detail ?? spec.title,
    message: `${method || '-'} ${r.request.path || '-'} -> ${r.response.status} ${r.code} (${r.decidedBy}${r.rule !== null ? `, rule ${r.rule}` : ''})`,
    metadata: {
      version: OCSF_VERSION,
      product: SIDECAR_PRODUCT,
      uid: r.id,
      correlation_uid: r.requestId,
      log_name: DECISIONS_LOG_NAME,
      event_code: r.code,
      profiles,
    },
    action_id: action.id,
    action: action.caption,
    disposition_id: disposition.id,
    disposition: disposition.caption,
    is_alert: isAlert(r),
    ...(r.policy ? { policy: policyOf(r.policy) } : {}),
    ...(r.rule !== null ? { firewall_rule: { uid: r.rule, name: r.rule } } : {}),
    ...(actor ? { actor } : {}),
    ...(src ? { src_endpoint: src } : {}),
    dst_endpoint: dst,
    app_protocol_name: r.request.scheme,
    observation_point_id: OBSERVATION_POINT_DESTINATION.id,
    observation_point: OBSERVATION_POINT_DESTINATION.caption,
    connection_info: connectionInfoOf(r.client.ip),
    ...(tls ? { tls } : {}),
    http_request: request,
    http_response: response,
    ...(r.traceId !== null ? { trace: { uid: r.traceId } } : {}),
    observables: [],
    unmapped: { palisade: extra },
  };
  e.observables = observablesOf(e);
  return e;
}

function connectionInfo(v: 4 | 6 | null): OcsfConnectionInfo {
  const info: Mutable<OcsfConnectionInfo> = { direction_id: DIRECTION_UNKNOWN.id, direction: DIRECTION_UNKNOWN.caption, protocol_num: 6, protocol_name: 'tcp' };
  if (v !== null) {
    info.protocol_ver_id = v;
    info.protocol_ver = IP_VERSION[v];
  }
  return shared(info);
}
// Three possible values: built once, shared by every event.
const CONNECTION_INFO = { 4: connectionInfo(4), 6: connectionInfo(6), none: connectionInfo(null) } as const;

function connectionInfoOf(clientIp: string): OcsfConnectionInfo {
  const family = isIP(clientIp);
  if (family === 0) return CONNECTION_INFO.none;
  // An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d; it is IPv4 on the wire.
  return family === 6 && !clientIp.startsWith('::ffff:') ? CONNECTION_INFO[6] : CONNECTION_INFO[4];
}
