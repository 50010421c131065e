/**
 * Headers sent to the upstream. Identity headers are set by the sidecar only:
 * any copy the client sent is removed first, so a client can never claim an
 * identity (the model is Envoy's x-forwarded-client-cert handling, "sanitize_set").
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { RequestContext } from '../pipeline/types.ts';

/** Headers the sidecar owns; a client-sent copy is always dropped. */
export const IDENTITY_HEADERS = [
  'x-forwarded-client-cert',
  'x-palisade-identity',
  'x-palisade-spiffe-id',
  'x-palisade-auth-methods',
  'x-palisade-scopes',
  'x-palisade-request-id',
  'x-palisade-policy',
  'x-palisade-would-deny',
  'x-request-id',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-real-ip',
  'forwarded',
] as const;

/** RFC 9110 hop-by-hop headers, never forwarded. */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade'] as const;

function quote(v: string): string {
  return `"${v.replace(/["\\]/g, '\\$&')}"`;
}

/**
 * Response headers from the upstream, minus hop-by-hop ones: the upstream's
 * "Connection: keep-alive" must not override the client's own connection
 * handling (a client that asked to close would be left hanging).
 */
export function downstreamHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[] | undefined> {
  const connection = headers['connection'];
  if (typeof connection === 'string') for (const name of connection.split(',')) delete headers[name.trim().toLowerCase()];
  for (const h of HOP_BY_HOP) if (h !== 'transfer-encoding') delete headers[h];
  return headers;
}

export function upstreamHeaders(ctx: RequestContext, headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = headers;
  for (const h of HOP_BY_HOP) delete out[h];
  for (const h of IDENTITY_HEADERS) delete out[h];
  out['x-request-id'] = ctx.id;
  out['x-forwarded-for'] = ctx.clientIp;
  out['x-forwarded-proto'] = ctx.tls ? 'https' : 'http';
  if (ctx.host) out['x-forwarded-host'] = ctx.host;
  const peer = ctx.tls?.peer;
  if (peer) {
    const parts = [`Hash=${peer.fingerprint256.replace(/:/g, '').toLowerCase()}`, `Subject=${quote(peer.subject)}`];
    if (peer.spiffeId) parts.push(`URI=${peer.spiffeId}`);
    out['x-forwarded-client-cert'] = parts.join(';');
  }
  const id = ctx.identity;
  if (id) {
    out['x-palisade-identity'] = id.subject;
    out['x-palisade-auth-methods'] = id.methods.join(',');
    if (id.spiffeId) out['x-palisade-spiffe-id'] = id.spiffeId;
    if (id.scopes.length > 0) out['x-palisade-scopes'] = id.scopes.join(' ');
  }
  if (ctx.wouldDeny.length > 0) out['x-palisade-would-deny'] = ctx.wouldDeny.map((w) => w.code).join(',');
  return out;
}
