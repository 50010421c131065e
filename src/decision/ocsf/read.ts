/**
 * OCSF HTTP Activity event -> the decision record it was made from. The
 * inverse of toOcsfHttpActivity, exact for every record field: `policy diff`
 * replays recorded events through another policy and the detector reads the
 * stream, and both need the record, not its SIEM-facing projection.
 *
 * Mapped OCSF attributes are the source of truth; unmapped.palisade supplies
 * what OCSF has no place for, and its `exact` entries override the few
 * fields whose OCSF form could not carry the original value.
 */
import { CODES, isCode } from '../../errors/codes.ts';
import type { Decider, Identity, PeerCertificate, StageTiming, TlsFacts, WouldDeny } from '../../pipeline/types.ts';
import type { DecisionRecord } from '../record.ts';
import { certTimeFromMs, fingerprintFromOcsf, joinHost, tlsVersionFromOcsf } from './convert.ts';
import { CLASS, FINGERPRINT_SHA256 } from './enums.ts';
import type { OcsfHttpActivity, PalisadeDecisionExtra } from './http-activity.ts';
import type { StandardPeer } from './standard.ts';
import type { OcsfActor, OcsfTls } from './types.ts';

export class OcsfReadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OcsfReadError';
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** True for a Palisade decision event (HTTP Activity with unmapped.palisade); cheap, for stream consumers. */
export function isDecisionEvent(event: unknown): event is OcsfHttpActivity {
  return isObject(event) && event['class_uid'] === CLASS.httpActivity.uid && isObject(event['unmapped']) && isObject(event['unmapped']['palisade']);
}

/** `identitySpiffe`: the identity's SPIFFE ID, which a standard event gives instead of repeating the peer's. */
function peerOf(tls: OcsfTls, identitySpiffe: string | null, std: StandardPeer | undefined): PeerCertificate | null {
  if (std) {
    // A standard event: the certificate's per-request facts in unmapped.palisade.peer (standard.ts).
    return {
      spiffeId: std.spiffe_id ?? (std.subject === undefined ? identitySpiffe : null),
      subject: std.subject ?? '',
      issuer: '',
      serialNumber: '',
      fingerprint256: std.sha256 !== undefined ? fingerprintFromOcsf(std.sha256) : '',
      validFrom: '',
      validTo: '',
    };
  }
  const c = tls.certificate;
  if (!c) return null;
  const san = c.sans?.find((s) => s.type === 'URI' && s.name.startsWith('spiffe://'));
  const fp = c.fingerprints?.find((f) => f.algorithm_id === FINGERPRINT_SHA256.id);
  return {
    // An earlier standard event (no validity: created_time absent) gave the SPIFFE ID as the identity's unless it had the SAN.
    spiffeId: san?.name ?? (c.created_time === undefined && c.subject === undefined ? identitySpiffe : null),
    subject: c.subject ?? '',
    issuer: c.issuer,
    serialNumber: c.serial_number,
    fingerprint256: fp ? fingerprintFromOcsf(fp.value) : '',
    validFrom: c.created_time !== undefined ? certTimeFromMs(c.created_time) : '',
    validTo: c.expiration_time !== undefined ? certTimeFromMs(c.expiration_time) : '',
  };
}

function tlsOf(tls: OcsfTls, identitySpiffe: string | null, std: StandardPeer | undefined): TlsFacts {
  return { protocol: tlsVersionFromOcsf(tls.version), cipher: tls.cipher ?? null, sni: tls.sni ?? null, peer: peerOf(tls, identitySpiffe, std) };
}

function identityOf(actor: OcsfActor | undefined, extra: Partial<PalisadeDecisionExtra>): Identity | null {
  const more = extra.identity;
  if (!actor?.user || !more) return null;
  const session = actor.session;
  return {
    subject: actor.user.uid ?? actor.user.name ?? '',
    methods: more.methods,
    // A standard event leaves out an absent SPIFFE ID and empty scopes or claims.
    spiffeId: more.spiffe_id ?? null,
    issuer: actor.idp?.issuer ?? actor.idp?.name ?? null,
    clientId: actor.app_uid ?? null,
    scopes: more.scopes ?? [],
    groups: actor.user.groups?.map((g) => g.name) ?? [],
    claims: more.claims ?? {},
    tokenId: session?.uid ?? null,
    expiresAt: session?.expiration_time !== undefined ? session.expiration_time / 1000 : null,
  };
}

/** Sets a dotted record path (only paths the writer produces in `exact`). */
function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let cur: Record<string, unknown> = target;
  for (let i = 0; i < keys.length - 1; i++) {
    const k = keys[i] as string;
    const next = cur[k];
    if (!isObject(next)) throw new OcsfReadError(`unmapped.palisade.exact["${path}"]: record has no ${keys.slice(0, i + 1).join('.')}`);
    cur = next;
  }
  cur[keys[keys.length - 1] as string] = value;
}

/**
 * Reads both detail levels (PALISADE_EVENT_DETAIL). A standard event
 * (standard.ts) has no verdict, code or rule in unmapped.palisade: they come
 * from status_code and firewall_rule; what it leaves out comes back as
 * standard.ts's standardRecord() says (no stage timings, whole-ms times...).
 */
export function recordFromOcsf(input: unknown): DecisionRecord {
  if (!isDecisionEvent(input)) throw new OcsfReadError(`not a Palisade decision event: expected class_uid ${CLASS.httpActivity.uid} with unmapped.palisade`);
  const e = input;
  const x = e.unmapped.palisade as Partial<PalisadeDecisionExtra> & { readonly peer?: StandardPeer };
  const code = x.code ?? e.status_code;
  if (!isCode(code)) throw new OcsfReadError(`unmapped.palisade.code / status_code: unknown code ${JSON.stringify(code)}`);
  // A standard event leaves out the stage of an allowed request: always "forward".
  const stage = x.stage ?? (code === 'ALLOWED' ? 'forward' : undefined);
  if (typeof stage !== 'string') throw new OcsfReadError('unmapped.palisade.stage: missing');
  if (typeof e.metadata?.uid !== 'string') throw new OcsfReadError('metadata.uid: missing');
  const req = e.http_request ?? {};
  const url = req.url;
  const contentType = req.http_headers?.find((h) => h.name.toLowerCase() === 'content-type');
  const record: Mutable<DecisionRecord> = {
    id: e.metadata.uid,
    requestId: req.uid ?? e.metadata.correlation_uid ?? '',
    traceId: e.trace?.uid ?? null,
    time: e.time,
    durationMs: x.duration_ms ?? e.duration,
    verdict: x.verdict ?? (code === 'ALLOWED' ? 'allow' : 'deny'),
    decidedBy: stage as Decider,
    code,
    rule: x.rule !== undefined ? x.rule : (e.firewall_rule?.uid ?? null),
    wouldDeny: (x.would_deny ?? []) as WouldDeny[],
    identity: identityOf(e.actor, x),
    client: { ip: e.src_endpoint?.ip ?? '', port: e.src_endpoint?.port ?? 0, forwardedFor: req.x_forwarded_for ?? [] },
    server: { ip: e.dst_endpoint?.ip ?? '', port: e.dst_endpoint?.ip !== undefined ? (e.dst_endpoint.port ?? 0) : 0 },
    tls: e.tls ? tlsOf(e.tls, x.identity?.spiffe_id ?? null, x.peer) : null,
    request: {
      method: req.http_method ?? (e.activity_id === 99 ? e.activity_name : ''),
      path: url?.path ?? '',
      host: url && (url.hostname !== undefined || url.port !== undefined) ? joinHost(url.hostname ?? '', url.port) : '',
      scheme: e.app_protocol_name ?? url?.scheme ?? (e.tls ? 'https' : 'http'),
      // A standard event (no verdict in unmapped.palisade) leaves out HTTP/1.1.
      httpVersion: req.version ?? (x.verdict === undefined ? '1.1' : ''),
      userAgent: req.user_agent ?? null,
      contentType: contentType?.value ?? null,
      route: x.route ?? null,
      params: x.params ?? null,
      bytesIn: req.body_length ?? 0,
    },
    response: { status: e.http_response.code, bytesOut: e.http_response.length ?? 0 },
    stages: (x.stages ?? []) as StageTiming[],
    upstreamMs: x.upstream_ms !== undefined ? x.upstream_ms : (e.http_response.latency ?? null),
    policy: e.policy ? policyOf(e.policy) : null,
    // A standard event has the detail in status_detail (the code's title there means none: earlier standard events).
    detail: x.detail !== undefined ? x.detail : e.status_detail !== undefined && e.status_detail !== CODES[code].title ? e.status_detail : null,
  };
  if (x.quotas) record.quotas = x.quotas.map((q) => ({ rule: q.rule, key: q.key, limit: q.limit, windowMs: q.window_ms }));
  if (x.exact) for (const [path, value] of Object.entries(x.exact)) setPath(record as unknown as Record<string, unknown>, path, value);
  return record;
}

function policyOf(p: NonNullable<OcsfHttpActivity['policy']>): NonNullable<DecisionRecord['policy']> {
  const facts = { name: p.name ?? '', version: p.version ?? '', hash: p.uid ?? '' };
  const keyId = p.data?.signature.key_id;
  return keyId !== undefined ? { ...facts, keyId } : facts;
}
