/**
 * Decision record -> Elastic Common Schema (ECS 8.x) document, for Elastic
 * users who index the stream without an OCSF pipeline. The same facts as the
 * OCSF event (same conversions, same omissions: no query string, token,
 * cookie or header other than Content-Type), named the ECS way; the sidecar's
 * own facts go under the custom `palisade` namespace, as ECS advises for
 * custom fields. Not lossless: the OCSF event is the record of truth.
 */
import { CODES } from '../../errors/codes.ts';
import type { DecisionRecord } from '../record.ts';
import { SHA256_NODE, certTimeToMs, fingerprintToOcsf, isIpAddress, splitHost, tlsVersionToOcsf } from './convert.ts';
import { isAlert, severityOf } from './http-activity.ts';
import { palisadeVersion } from './product.ts';

export const ECS_VERSION = '8.11.0';

export interface EcsDocument {
  readonly '@timestamp': string;
  readonly ecs: { readonly version: string };
  readonly event: Readonly<Record<string, unknown>>;
  readonly observer: Readonly<Record<string, unknown>>;
  readonly [field: string]: unknown;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

export function toEcs(r: DecisionRecord): EcsDocument {
  const allowed = r.verdict === 'allow';
  const forwarded = allowed || r.decidedBy === 'forward' || r.decidedBy === 'upstream';
  const doc: Record<string, unknown> = {
    '@timestamp': iso(r.time),
    ecs: { version: ECS_VERSION },
    event: {
      id: r.id,
      kind: isAlert(r) ? 'alert' : 'event',
      category: r.decidedBy === 'authn' ? ['network', 'web', 'authentication'] : ['network', 'web'],
      type: ['access', forwarded ? 'allowed' : 'denied'],
      action: r.code.toLowerCase().replaceAll('_', '-'),
      outcome: r.code === 'ALLOWED' ? 'success' : 'failure',
      code: r.code,
      reason: r.detail ?? CODES[r.code].title,
      severity: severityOf(r),
      start: iso(r.time),
      end: iso(r.time + Math.round(r.durationMs)),
      // ECS durations are nanoseconds.
      duration: Math.round(r.durationMs * 1e6),
      dataset: 'palisade.decisions',
      module: 'palisade',
    },
    observer: { vendor: 'Palisade', product: 'Palisade', version: palisadeVersion(), type: 'proxy' },
  };
  if (isIpAddress(r.client.ip)) doc['source'] = { ip: r.client.ip, port: r.client.port, address: r.client.ip };
  if (isIpAddress(r.server.ip)) doc['destination'] = { ip: r.server.ip, port: r.server.port, address: r.server.ip };
  const network: Record<string, unknown> = { transport: 'tcp', protocol: 'http' };
  if (isIpAddress(r.client.ip)) network['type'] = r.client.ip.includes(':') && !r.client.ip.startsWith('::ffff:') ? 'ipv6' : 'ipv4';
  const forwardedIp = r.client.forwardedFor.find(isIpAddress);
  if (forwardedIp) network['forwarded_ip'] = forwardedIp;
  doc['network'] = network;

  const req = r.request;
  const httpRequest: Record<string, unknown> = { id: r.requestId, body: { bytes: req.bytesIn } };
  if (req.method !== '') httpRequest['method'] = req.method;
  if (req.contentType !== null) httpRequest['mime_type'] = req.contentType;
  doc['http'] = { request: httpRequest, response: { status_code: r.response.status, bytes: r.response.bytesOut }, ...(req.httpVersion !== '' ? { version: req.httpVersion } : {}) };
  if (req.path !== '' || req.host !== '') {
    const url: Record<string, unknown> = { scheme: req.scheme };
    if (req.path !== '') url['path'] = req.path;
    if (req.host !== '') {
      const h = splitHost(req.host);
      if (h.hostname !== '') url['domain'] = h.hostname;
      if (h.port !== undefined) url['port'] = h.port;
      url['original'] = `${req.scheme}://${req.host}${req.path}`;
      url['full'] = url['original'];
    }
    doc['url'] = url;
  }
  if (req.userAgent !== null) doc['user_agent'] = { original: req.userAgent };

  const id = r.identity;
  if (id) {
    doc['user'] = { id: id.subject, name: id.subject, ...(id.issuer !== null ? { domain: id.issuer } : {}) };
  }
  if (r.tls && r.tls.protocol !== null) {
    const tls: Record<string, unknown> = { version: tlsVersionToOcsf(r.tls.protocol), version_protocol: 'tls', established: true };
    if (r.tls.cipher !== null) tls['cipher'] = r.tls.cipher;
    const client: Record<string, unknown> = {};
    if (r.tls.sni !== null) client['server_name'] = r.tls.sni;
    const p = r.tls.peer;
    if (p) {
      const from = certTimeToMs(p.validFrom);
      const to = certTimeToMs(p.validTo);
      client['x509'] = {
        subject: { distinguished_name: p.subject },
        issuer: { distinguished_name: p.issuer },
        serial_number: p.serialNumber,
        ...(from !== null ? { not_before: iso(from) } : {}),
        ...(to !== null ? { not_after: iso(to) } : {}),
        ...(p.spiffeId !== null ? { alternative_names: [p.spiffeId] } : {}),
      };
      if (SHA256_NODE.test(p.fingerprint256)) client['hash'] = { sha256: fingerprintToOcsf(p.fingerprint256).toUpperCase() };
    }
    if (Object.keys(client).length > 0) tls['client'] = client;
    doc['tls'] = tls;
  }
  if (r.traceId !== null) doc['trace'] = { id: r.traceId };
  if (r.rule !== null || r.policy) {
    doc['rule'] = {
      ...(r.rule !== null ? { id: r.rule, name: r.rule } : {}),
      ...(r.policy ? { ruleset: r.policy.name, version: r.policy.version } : {}),
    };
  }
  doc['palisade'] = {
    verdict: r.verdict,
    stage: r.decidedBy,
    code: r.code,
    rule: r.rule,
    would_deny: r.wouldDeny,
    stages: r.stages,
    duration_ms: r.durationMs,
    upstream_ms: r.upstreamMs,
    route: req.route,
    params: req.params,
    policy: r.policy,
    ...(id ? { identity: { methods: id.methods, spiffe_id: id.spiffeId, client_id: id.clientId, scopes: id.scopes, groups: id.groups, token_id: id.tokenId, expires_at: id.expiresAt } } : {}),
  };
  return doc as unknown as EcsDocument;
}
