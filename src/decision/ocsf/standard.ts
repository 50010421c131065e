/**
 * The standard detail level of the decision event (PALISADE_EVENT_DETAIL,
 * default "standard"): the same OCSF 1.8.0 HTTP Activity (4002) as the full
 * event (http-activity.ts), keeping what OCSF requires, what it recommends
 * that carries information, and the facts the detector and `policy diff`
 * read back (read.ts). SIEM ingestion is billed by the byte and every
 * request yields one event, so it leaves out (docs/events.md, "Detail
 * levels", says the same for users):
 *
 * - caption siblings (class_name, category_name, activity_name, type_name,
 *   severity, action, disposition, observation_point, status): a SIEM
 *   derives them from the *_id values; message (method, path, status and
 *   code, all in their own attributes); status_detail when it is only the
 *   code's fixed title (it stays when the decision has a detail);
 * - constants: timezone_offset (always 0: time is UTC), metadata.log_name
 *   (always palisade.decisions), metadata.product.vendor_name (= name),
 *   policy.is_applied (always true), policy.data when the policy was not
 *   signed (present: it was, and by which key), connection_info (always TCP,
 *   direction unknown; the IP version is src_endpoint.ip's),
 *   http_request.version when it is 1.1 (the reader's default);
 * - values given twice: metadata.correlation_uid and metadata.event_code
 *   (http_request.uid and status_code), start_time and end_time (time and
 *   duration), app_protocol_name, url.url_string (scheme, host, port and
 *   path are there), url.scheme when TLS says it (https with a tls object,
 *   http without), firewall_rule.name (= uid), actor.user.name (= uid);
 *   the full policy hash (policy.uid is its first 16 hex digits: 64 bits
 *   tell policies apart, and policy diff compares by prefix); observables
 *   (optional: a SIEM derives them);
 * - per-connection facts: tls keeps only its version. The peer certificate
 *   (subject, issuer, serial, validity, SANs), the cipher and SNI are the
 *   connection's; OCSF's certificate object requires issuer and
 *   serial_number, so instead of a certificate the event carries, in
 *   unmapped.palisade.peer, the certificate's SHA-256 fingerprint (the hash
 *   the upstream sees in X-Forwarded-Client-Cert), its subject when no
 *   SPIFFE ID names the peer, and its SPIFFE ID when no identity in the
 *   event carries it;
 * - what neither the detector nor policy diff reads and OCSF does not
 *   require or recommend: actor.idp and actor.session.issuer (the token's
 *   issuer), actor.session.expiration_time (the token's expiry),
 *   http_response.length and .latency (the response's size, the upstream's
 *   time: duration stays); and the Content-Type header (http_headers);
 * - from unmapped.palisade: verdict, code and rule (status_code and
 *   firewall_rule carry them), stage for an allowed request (always
 *   "forward"), per-stage timings, the exact duration and upstream time
 *   (duration stays, in whole ms), route params, an empty
 *   would_deny, the detail (status_detail has it); of the identity an
 *   absent SPIFFE ID, empty scopes or claims, and the claims carried
 *   elsewhere (sub, iss, jti, scope, scp, client_id, azp) or only about the
 *   token's lifetime (exp, iat, nbf).
 *
 * standardRecord() says exactly which record a standard event reads back to.
 * standardEventJson() writes the event's JSON text directly from the record
 * (the sinks' path); toOcsfHttpActivityStandard() builds the event object,
 * and the two agree byte for byte (test/decision/ocsf/standard-json.test.ts).
 */
import { CODES } from '../../errors/codes.ts';
import type { Identity, TlsFacts } from '../../pipeline/types.ts';
import type { DecisionRecord } from '../record.ts';
import { SHA256_NODE, fingerprintToOcsf, isIpAddress, joinHost, splitHost, tlsVersionFromOcsf, tlsVersionToOcsf } from './convert.ts';
import { ACTION, ACTIVITY_OTHER, ACTIVITY_UNKNOWN, CLASS, DISPOSITION, HTTP_ACTIVITY, OCSF_VERSION, STATUS } from './enums.ts';
import { endpointOf, forwarded, isAlert, severityOf, userType, type PalisadeIdentityExtra } from './http-activity.ts';
import { productOf } from './product.ts';
import type { OcsfActor, OcsfHttpRequest, OcsfPolicy, OcsfProduct, OcsfSession, OcsfTls, OcsfUrl, OcsfUser } from './types.ts';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** JWT claims a standard event leaves out of unmapped.palisade.identity.claims (carried elsewhere, or the token's lifetime). */
export const STANDARD_DROPPED_CLAIMS: readonly string[] = ['sub', 'iss', 'jti', 'exp', 'iat', 'nbf', 'scope', 'scp', 'client_id', 'azp'];

/** unmapped.palisade.peer: the peer certificate, per request, without what belongs to the connection. */
export interface StandardPeer {
  /** SHA-256 of the certificate, lowercase hex (absent when Node gave no SHA-256 in its usual form). */
  readonly sha256?: string;
  /** The certificate's subject, when no SPIFFE ID names the peer. */
  readonly subject?: string;
  /** The peer's SPIFFE ID, when no identity in the event carries it (a request refused before authentication). */
  readonly spiffe_id?: string;
}

// metadata.product: the name and release (vendor_name repeats the name; the feature is the log's).
const SIDECAR = productOf('sidecar');
const PRODUCT: OcsfProduct = Object.freeze({ name: SIDECAR.name, version: SIDECAR.version } as OcsfProduct);

/** metadata.profiles by [has actor][has trace id]; security_control always (action, disposition, policy, firewall_rule). */
const PROFILES = [
  [Object.freeze(['security_control']), Object.freeze(['security_control', 'trace'])],
  [Object.freeze(['security_control', 'host']), Object.freeze(['security_control', 'host', 'trace'])],
] as const;

// ----- per-identity, per-connection and per-policy parts: mapped once, reused by every event -----

interface IdentityParts {
  readonly actor: OcsfActor;
  readonly extra: PalisadeIdentityExtra;
  /** Their JSON text, for standardEventJson. */
  readonly actorJson: string;
  readonly extraJson: string;
}

// authn memoizes one Identity per connection (mTLS) or token: its OCSF form is built once.
const identityCache = new WeakMap<Identity, IdentityParts>();
function identityParts(identity: Identity): IdentityParts {
  let p = identityCache.get(identity);
  if (!p) {
    const t = userType(identity);
    const user: Mutable<OcsfUser> = { uid: identity.subject, type_id: t.id } as Mutable<OcsfUser>;
    if (identity.groups.length > 0) user.groups = identity.groups.map((name) => ({ name }));
    const actor: Mutable<OcsfActor> = { user };
    if (identity.clientId !== null) actor.app_uid = identity.clientId;
    if (identity.tokenId !== null) actor.session = { uid: identity.tokenId } as OcsfSession;
    const claims = standardClaims(identity.claims);
    const extra: Mutable<Partial<PalisadeIdentityExtra>> = { methods: identity.methods };
    if (identity.spiffeId !== null) extra.spiffe_id = identity.spiffeId;
    if (identity.scopes.length > 0) extra.scopes = identity.scopes;
    for (const _ in claims) {
      extra.claims = claims;
      break;
    }
    p = { actor, extra: extra as PalisadeIdentityExtra, actorJson: JSON.stringify(actor), extraJson: JSON.stringify(extra) };
    identityCache.set(identity, p);
  }
  return p;
}

const DROPPED_CLAIMS: ReadonlySet<string> = new Set(STANDARD_DROPPED_CLAIMS);

/** The claims without the dropped ones (the same object when none is there); a copy, not a delete: deleting makes a slow object. */
function standardClaims(claims: Readonly<Record<string, unknown>>): Readonly<Record<string, unknown>> {
  let drop = false;
  for (const k of STANDARD_DROPPED_CLAIMS) {
    if (Object.hasOwn(claims, k)) {
      drop = true;
      break;
    }
  }
  if (!drop) return claims;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(claims)) {
    if (DROPPED_CLAIMS.has(k)) continue;
    // A claim named __proto__ (JSON.parse makes it an own property) must stay one, not become the prototype.
    if (k === '__proto__') Object.defineProperty(out, k, { value: claims[k], enumerable: true, writable: true, configurable: true });
    else out[k] = claims[k];
  }
  return out;
}

interface TlsParts {
  readonly tls: OcsfTls;
  readonly tlsJson: string;
  /** The peer without and with its SPIFFE ID (null: no peer certificate). */
  readonly peer: readonly [StandardPeer, StandardPeer] | null;
  readonly peerJson: readonly [string, string] | null;
}

/**
 * The connection's TLS facts (tls/peer.ts caches one TlsFacts per connection),
 * mapped once. Null when OCSF cannot carry the protocol exactly (the full
 * event keeps such facts; the standard one leaves TLS out).
 */
const tlsCache = new WeakMap<TlsFacts, TlsParts | null>();
function tlsParts(tls: TlsFacts): TlsParts | null {
  let m = tlsCache.get(tls);
  if (m === undefined) {
    m = null;
    if (tls.protocol !== null && tlsVersionFromOcsf(tlsVersionToOcsf(tls.protocol)) === tls.protocol) {
      const out: OcsfTls = { version: tlsVersionToOcsf(tls.protocol) };
      const p = tls.peer;
      let peer: readonly [StandardPeer, StandardPeer] | null = null;
      if (p) {
        // Without a SPIFFE ID the subject names the peer (policy diff replays the stages before authn with it).
        const base: Mutable<StandardPeer> = {};
        if (SHA256_NODE.test(p.fingerprint256)) base.sha256 = fingerprintToOcsf(p.fingerprint256);
        if (p.spiffeId === null) base.subject = p.subject;
        peer = [base, p.spiffeId === null ? base : { ...base, spiffe_id: p.spiffeId }];
      }
      m = { tls: out, tlsJson: JSON.stringify(out), peer, peerJson: peer ? [JSON.stringify(peer[0]), JSON.stringify(peer[1])] : null };
    }
    tlsCache.set(tls, m);
  }
  return m;
}

/** Does the event need the peer's SPIFFE ID (no identity carrying that same ID)? */
function needsPeerSpiffe(r: DecisionRecord): boolean {
  const id = r.tls?.peer?.spiffeId ?? null;
  return id !== null && r.identity?.spiffeId !== id;
}

/** Hex digits of the policy's SHA-256 a standard event keeps as policy.uid: 64 bits tell policies apart (policy diff compares by prefix). */
export const STANDARD_POLICY_UID_LENGTH = 16;

function policyUid(hash: string): string {
  return hash.length > STANDARD_POLICY_UID_LENGTH ? hash.slice(0, STANDARD_POLICY_UID_LENGTH) : hash;
}

// The active policy changes rarely: the events of one policy share its OCSF form.
let lastPolicy: { readonly key: NonNullable<DecisionRecord['policy']>; readonly ocsf: OcsfPolicy; readonly json: string } | null = null;
function policyParts(p: NonNullable<DecisionRecord['policy']>): { readonly ocsf: OcsfPolicy; readonly json: string } {
  const last = lastPolicy;
  if (last && (last.key === p || (last.key.hash === p.hash && last.key.name === p.name && last.key.version === p.version && last.key.keyId === p.keyId))) return last;
  // is_applied is always true (the policy in force); data only for a signed policy (absent: applied unverified).
  const uid = policyUid(p.hash);
  const ocsf: OcsfPolicy = p.keyId !== undefined ? { name: p.name, uid, version: p.version, data: { signature: { verified: true, key_id: p.keyId } } } : { name: p.name, uid, version: p.version };
  const next = { key: p, ocsf, json: JSON.stringify(ocsf) };
  lastPolicy = next;
  return next;
}

// ----- the per-request parts, shared by the object and the text writer -----

/** status_detail: the decision's detail; absent when there is none (the code's title is no news). */
function statusDetailOf(r: DecisionRecord): string | undefined {
  return r.detail !== null && r.detail !== CODES[r.code].title ? r.detail : undefined;
}

// A sidecar sees the same Host header and the same few addresses request after request:
// their checks (a regex split, an address parse) are remembered, boundedly.
let lastHost = '';
let lastHostParts: { readonly hostname: string; readonly port?: number; readonly exact: boolean } = { hostname: '', exact: false };
function hostParts(host: string): { readonly hostname: string; readonly port?: number; readonly exact: boolean } {
  if (host !== lastHost) {
    const parts = splitHost(host);
    lastHostParts = { ...parts, exact: joinHost(parts.hostname, parts.port) === host };
    lastHost = host;
  }
  return lastHostParts;
}

const ipChecked = new Map<string, boolean>();
function isIp(value: string): boolean {
  let ok = ipChecked.get(value);
  if (ok === undefined) {
    ok = isIpAddress(value);
    if (ipChecked.size >= 1024) ipChecked.clear();
    ipChecked.set(value, ok);
  }
  return ok;
}


/** The url object (no url_string unless it is the only way to say the host; no scheme when TLS says it). */
function urlOf(r: DecisionRecord, withTls: boolean, exact: Record<string, unknown>): OcsfUrl | undefined {
  const { host, path, scheme } = r.request;
  if (host === '' && path === '') {
    // No url: the reader takes the scheme from TLS.
    if (scheme !== (withTls ? 'https' : 'http')) exact['request.scheme'] = scheme;
    return undefined;
  }
  const url: Mutable<OcsfUrl> = {};
  if (scheme !== (withTls ? 'https' : 'http')) url.scheme = scheme;
  if (host !== '') {
    const parts = hostParts(host);
    if (!parts.exact) exact['request.host'] = host;
    if (parts.hostname !== '') url.hostname = parts.hostname;
    if (parts.port !== undefined) url.port = parts.port;
    // OCSF's url needs a path or a url_string.
    if (path === '') url.url_string = `${scheme}://${host}`;
  }
  if (path !== '') url.path = path;
  return url;
}

function httpRequestOf(r: DecisionRecord, knownMethod: boolean, withTls: boolean, exact: Record<string, unknown>): OcsfHttpRequest {
  const request: Mutable<OcsfHttpRequest> = { uid: r.requestId };
  if (knownMethod) request.http_method = r.request.method;
  const url = urlOf(r, withTls, exact);
  if (url) request.url = url;
  // HTTP/1.1, what nearly every request is, goes without saying (the reader's default).
  if (r.request.httpVersion !== '1.1' && r.request.httpVersion !== '') request.version = r.request.httpVersion;
  if (r.request.httpVersion === '') exact['request.httpVersion'] = '';
  if (r.request.userAgent !== null) request.user_agent = r.request.userAgent;
  const xff = r.client.forwardedFor;
  if (xff.length > 0) {
    const ips = xff.filter(isIp);
    if (ips.length > 0) request.x_forwarded_for = ips;
    if (ips.length !== xff.length) exact['client.forwardedFor'] = xff;
  }
  request.body_length = r.request.bytesIn;
  return request;
}

function quotasOf(r: DecisionRecord): readonly { rule: string; key: string; limit: number; window_ms: number }[] | undefined {
  return r.quotas?.map((q) => ({ rule: q.rule, key: q.key, limit: q.limit, window_ms: q.windowMs }));
}

/** The standard event as an object (the sinks write standardEventJson, the same bytes). */
export function toOcsfHttpActivityStandard(r: DecisionRecord): Record<string, unknown> {
  const exact: Record<string, unknown> = {};
  const method = r.request.method;
  const known = HTTP_ACTIVITY[method];
  const activity = known ?? (method === '' ? ACTIVITY_UNKNOWN : ACTIVITY_OTHER);
  const spec = CODES[r.code];
  const status = r.code === 'ALLOWED' ? STATUS.success : STATUS.failure;
  const tls = r.tls ? tlsParts(r.tls) : null;

  const request = httpRequestOf(r, known !== undefined, tls !== null, exact);
  // The response's status only: its length and the upstream's time are neither read back nor required (the full event has them).
  const response = { code: r.response.status };
  const src = endpointOf(r.client.ip, r.client.port, exact, 'client', isIp);
  // The network class needs src_endpoint or dst_endpoint: with the socket gone, the sidecar names itself.
  const dst = endpointOf(r.server.ip, r.server.port, exact, 'server', isIp) ?? { svc_name: 'palisade' };
  const id = r.identity ? identityParts(r.identity) : null;
  // For an unknown method the request's own method is kept (the full event puts it in activity_name).
  if (!known && method !== '') exact['request.method'] = method;

  const extra: Record<string, unknown> = {};
  if (r.decidedBy !== 'forward' || r.code !== 'ALLOWED') extra['stage'] = r.decidedBy;
  if (r.wouldDeny.length > 0) extra['would_deny'] = r.wouldDeny;
  if (r.request.route !== null) extra['route'] = r.request.route;
  if (id) extra['identity'] = id.extra;
  if (tls?.peer) extra['peer'] = tls.peer[needsPeerSpiffe(r) ? 1 : 0];
  // A detail that happens to be the code's title cannot go in status_detail (the reader would take it for none).
  if (r.detail !== null && r.detail === spec.title) extra['detail'] = r.detail;
  // What the quota aggregator counts: kept at every detail level.
  const quotas = quotasOf(r);
  if (quotas) extra['quotas'] = quotas;
  for (const _ in exact) {
    extra['exact'] = exact;
    break;
  }

  const e: Record<string, unknown> = {
    class_uid: 4002,
    category_uid: 4,
    activity_id: activity.id,
    type_uid: CLASS.httpActivity.uid * 100 + activity.id,
    severity_id: severityOf(r),
    time: r.time,
    duration: Math.round(r.durationMs),
    status_id: status.id,
    status_code: r.code,
  };
  const detail = statusDetailOf(r);
  if (detail !== undefined) e['status_detail'] = detail;
  e['metadata'] = { version: OCSF_VERSION, product: PRODUCT, uid: r.id, profiles: PROFILES[id ? 1 : 0][r.traceId !== null ? 1 : 0] };
  e['action_id'] = (forwarded(r) ? ACTION.allowed : ACTION.denied).id;
  e['disposition_id'] = DISPOSITION[spec.disposition].id;
  e['is_alert'] = isAlert(r);
  // policy diff tells records made under another policy by its hash.
  if (r.policy) e['policy'] = policyParts(r.policy).ocsf;
  if (r.rule !== null) e['firewall_rule'] = { uid: r.rule };
  if (id) e['actor'] = id.actor;
  if (src) e['src_endpoint'] = src;
  e['dst_endpoint'] = dst;
  if (tls) e['tls'] = tls.tls;
  e['http_request'] = request;
  e['http_response'] = response;
  if (r.traceId !== null) e['trace'] = { uid: r.traceId };
  e['unmapped'] = { palisade: extra };
  return e;
}

// ----- the JSON text, written directly (the sinks' path) -----

// Characters JSON.stringify escapes (lone surrogates included, which it writes as \u escapes; a
// paired surrogate also goes through JSON.stringify, which leaves it as it is).
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** A JSON string literal, exactly as JSON.stringify writes it. */
function str(s: string): string {
  return NEEDS_ESCAPE.test(s) ? JSON.stringify(s) : `"${s}"`;
}

/** A JSON number, exactly as JSON.stringify writes it (non-finite: null). */
function num(n: number): string {
  return Number.isFinite(n) ? String(n) : 'null';
}

const PRODUCT_JSON = JSON.stringify(PRODUCT);
const METADATA_HEAD = `"metadata":{"version":${str(OCSF_VERSION)},"product":${PRODUCT_JSON},"uid":`;
const PROFILES_JSON = PROFILES.map((row) => row.map((p) => JSON.stringify(p)));

/**
 * The standard event's JSON text: JSON.stringify(toOcsfHttpActivityStandard(r)),
 * byte for byte, written straight from the record. The parts many events share
 * (the caller's actor and identity, the connection's TLS facts, the policy)
 * are serialized once; strings from the request go through str(), which
 * leaves the escaping to JSON.stringify whenever there is anything to escape.
 */
export function standardEventJson(r: DecisionRecord): string {
  const exact: Record<string, unknown> = {};
  const method = r.request.method;
  const known = HTTP_ACTIVITY[method];
  const activity = known ?? (method === '' ? ACTIVITY_UNKNOWN : ACTIVITY_OTHER);
  const spec = CODES[r.code];
  const tls = r.tls ? tlsParts(r.tls) : null;
  const id = r.identity ? identityParts(r.identity) : null;

  // http_request first: its odd values go into `exact` before the endpoints' (the object's order).
  let req = `"http_request":{"uid":${str(r.requestId)}`;
  if (known !== undefined) req += `,"http_method":${str(method)}`;
  const url = urlOf(r, tls !== null, exact);
  if (url !== undefined) {
    let u = '';
    if (url.scheme !== undefined) u += `,"scheme":${str(url.scheme)}`;
    if (url.hostname !== undefined) u += `,"hostname":${str(url.hostname)}`;
    if (url.port !== undefined) u += `,"port":${num(url.port)}`;
    if (url.url_string !== undefined) u += `,"url_string":${str(url.url_string)}`;
    if (url.path !== undefined) u += `,"path":${str(url.path)}`;
    req += u === '' ? ',"url":{}' : `,"url":{${u.slice(1)}}`;
  }
  const rq = r.request;
  if (rq.httpVersion !== '1.1' && rq.httpVersion !== '') req += `,"version":${str(rq.httpVersion)}`;
  if (rq.httpVersion === '') exact['request.httpVersion'] = '';
  if (rq.userAgent !== null) req += `,"user_agent":${str(rq.userAgent)}`;
  const xff = r.client.forwardedFor;
  if (xff.length > 0) {
    const ips = xff.filter(isIp);
    if (ips.length > 0) req += `,"x_forwarded_for":${JSON.stringify(ips)}`;
    if (ips.length !== xff.length) exact['client.forwardedFor'] = xff;
  }
  req += `,"body_length":${num(rq.bytesIn)}}`;

  let out = `{"class_uid":4002,"category_uid":4,"activity_id":${activity.id},"type_uid":${CLASS.httpActivity.uid * 100 + activity.id},"severity_id":${severityOf(r)},"time":${num(r.time)},"duration":${num(Math.round(r.durationMs))},"status_id":${r.code === 'ALLOWED' ? STATUS.success.id : STATUS.failure.id},"status_code":${str(r.code)}`;
  const detail = statusDetailOf(r);
  if (detail !== undefined) out += `,"status_detail":${str(detail)}`;
  out += `,${METADATA_HEAD}${str(r.id)},"profiles":${PROFILES_JSON[id ? 1 : 0]?.[r.traceId !== null ? 1 : 0]}}`;
  out += `,"action_id":${forwarded(r) ? ACTION.allowed.id : ACTION.denied.id},"disposition_id":${DISPOSITION[spec.disposition].id},"is_alert":${isAlert(r) ? 'true' : 'false'}`;
  if (r.policy) out += `,"policy":${policyParts(r.policy).json}`;
  if (r.rule !== null) out += `,"firewall_rule":{"uid":${str(r.rule)}}`;
  if (id) out += `,"actor":${id.actorJson}`;
  const src = endpointOf(r.client.ip, r.client.port, exact, 'client', isIp);
  if (src) out += `,"src_endpoint":{"ip":${str(src.ip as string)},"port":${num(src.port as number)}}`;
  const dst = endpointOf(r.server.ip, r.server.port, exact, 'server', isIp);
  out += dst ? `,"dst_endpoint":{"ip":${str(dst.ip as string)},"port":${num(dst.port as number)}}` : ',"dst_endpoint":{"svc_name":"palisade"}';
  if (tls) out += `,"tls":${tls.tlsJson}`;
  out += `,${req}`;
  out += `,"http_response":{"code":${num(r.response.status)}}`;
  if (r.traceId !== null) out += `,"trace":{"uid":${str(r.traceId)}}`;
  if (!known && method !== '') exact['request.method'] = method;

  let x = '';
  if (r.decidedBy !== 'forward' || r.code !== 'ALLOWED') x += `,"stage":${str(r.decidedBy)}`;
  if (r.wouldDeny.length > 0) x += `,"would_deny":${JSON.stringify(r.wouldDeny)}`;
  if (rq.route !== null) x += `,"route":${str(rq.route)}`;
  if (id) x += `,"identity":${id.extraJson}`;
  if (tls?.peerJson) x += `,"peer":${tls.peerJson[needsPeerSpiffe(r) ? 1 : 0]}`;
  if (r.detail !== null && r.detail === spec.title) x += `,"detail":${str(r.detail)}`;
  const quotas = quotasOf(r);
  if (quotas) x += `,"quotas":${JSON.stringify(quotas)}`;
  for (const _ in exact) {
    x += `,"exact":${JSON.stringify(exact)}`;
    break;
  }
  out += x === '' ? ',"unmapped":{"palisade":{}}}' : `,"unmapped":{"palisade":{${x.slice(1)}}}}`;
  return out;
}

/**
 * The record a standard event reads back to (decodeDecision): the original
 * with what the standard level leaves out set to what the reader gives
 * instead. The detector and `policy diff` read only fields this keeps.
 */
export function standardRecord(r: DecisionRecord): DecisionRecord {
  const tls = r.tls ? tlsParts(r.tls) : null;
  const peer = r.tls?.peer ?? null;
  return {
    ...r,
    durationMs: Math.round(r.durationMs),
    upstreamMs: null,
    stages: [],
    request: { ...r.request, params: null, contentType: null },
    response: { ...r.response, bytesOut: 0 },
    identity: r.identity ? { ...r.identity, issuer: null, claims: standardClaims(r.identity.claims), expiresAt: null } : null,
    policy: r.policy ? { ...r.policy, hash: policyUid(r.policy.hash) } : null,
    tls:
      r.tls && tls
        ? {
            ...r.tls,
            cipher: null,
            sni: null,
            peer: peer
              ? {
                  // The SPIFFE ID comes back from unmapped.palisade.peer, or else from the identity's.
                  spiffeId: needsPeerSpiffe(r) || peer.spiffeId === null ? peer.spiffeId : (r.identity?.spiffeId ?? null),
                  subject: peer.spiffeId === null ? peer.subject : '',
                  issuer: '',
                  serialNumber: '',
                  fingerprint256: SHA256_NODE.test(peer.fingerprint256) ? peer.fingerprint256 : '',
                  validFrom: '',
                  validTo: '',
                }
              : null,
          }
        : null,
  };
}
