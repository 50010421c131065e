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

/** Hop-by-hop response headers dropped; transfer-encoding stays (reply-from frames the body by it). */
const HOP_BY_HOP_RESPONSE: ReadonlySet<string> = new Set<string>(HOP_BY_HOP.filter((h) => h !== 'transfer-encoding'));

/**
 * Response headers from the upstream, minus hop-by-hop ones: the upstream's
 * "Connection: keep-alive" must not override the client's own connection
 * handling (a client that asked to close would be left hanging). Copied into
 * a fresh object, like upstreamHeaders below: deleting the names in place
 * (Node's own server always sends connection and keep-alive) left a slow
 * dictionary-mode object for fastify to walk.
 */
export function downstreamHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[] | undefined> {
  const connection = headers['connection'];
  // Names the upstream listed in its Connection header are hop-by-hop too (RFC 9110 section 7.6.1);
  // the usual values name none beyond the fixed list.
  let listed: string[] | null = null;
  if (typeof connection === 'string') {
    const c = connection.toLowerCase();
    if (c !== 'keep-alive' && c !== 'close') listed = c.split(',').map((n) => n.trim());
  }
  const out: Record<string, string | string[] | undefined> = {};
  for (const name in headers) if (!HOP_BY_HOP_RESPONSE.has(name) && (listed === null || !listed.includes(name))) out[name] = headers[name];
  return out;
}

/** Every request header name the sidecar never forwards as the client sent it. */
const NOT_FORWARDED: ReadonlySet<string> = new Set<string>([...HOP_BY_HOP, ...IDENTITY_HEADERS]);

// The peer certificate's XFCC value, once per connection (tls/peer.ts caches one TlsFacts per connection).
const xfccCache = new WeakMap<NonNullable<RequestContext['tls']>, string | null>();

function xfccOf(tls: NonNullable<RequestContext['tls']>): string | null {
  let v = xfccCache.get(tls);
  if (v === undefined) {
    const peer = tls.peer;
    if (peer) {
      const parts = [`Hash=${peer.fingerprint256.replace(/:/g, '').toLowerCase()}`, `Subject=${quote(peer.subject)}`];
      if (peer.spiffeId) parts.push(`URI=${peer.spiffeId}`);
      v = parts.join(';');
    } else v = null;
    xfccCache.set(tls, v);
  }
  return v;
}

interface IdentityHeaders {
  readonly identity: string;
  readonly methods: string;
  readonly spiffeId: string | null;
  readonly scopes: string | null;
}
// Once per Identity object (authn memoizes those per connection or verified token).
const identityCache = new WeakMap<NonNullable<RequestContext['identity']>, IdentityHeaders>();

function identityHeadersOf(id: NonNullable<RequestContext['identity']>): IdentityHeaders {
  let h = identityCache.get(id);
  if (!h) {
    h = { identity: id.subject, methods: id.methods.join(','), spiffeId: id.spiffeId || null, scopes: id.scopes.length > 0 ? id.scopes.join(' ') : null };
    identityCache.set(id, h);
  }
  return h;
}

/**
 * The client's headers minus hop-by-hop and identity ones, plus the sidecar's.
 * Copied into a fresh object rather than deleting from the given one: deleting
 * two dozen names turned the object into a slow dictionary for every later
 * reader (undici walks it once more), and was a visible share of a request.
 */
export function upstreamHeaders(ctx: RequestContext, headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const name in headers) if (!NOT_FORWARDED.has(name)) out[name] = headers[name];
  out['x-request-id'] = ctx.id;
  out['x-forwarded-for'] = ctx.clientIp;
  out['x-forwarded-proto'] = ctx.tls ? 'https' : 'http';
  if (ctx.host) out['x-forwarded-host'] = ctx.host;
  const xfcc = ctx.tls ? xfccOf(ctx.tls) : null;
  if (xfcc !== null) out['x-forwarded-client-cert'] = xfcc;
  const id = ctx.identity;
  if (id) {
    const h = identityHeadersOf(id);
    out['x-palisade-identity'] = h.identity;
    out['x-palisade-auth-methods'] = h.methods;
    if (h.spiffeId !== null) out['x-palisade-spiffe-id'] = h.spiffeId;
    if (h.scopes !== null) out['x-palisade-scopes'] = h.scopes;
  }
  if (ctx.wouldDeny.length > 0) out['x-palisade-would-deny'] = ctx.wouldDeny.map((w) => w.code).join(',');
  return out;
}
