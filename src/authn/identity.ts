/**
 * Builds the request's Identity (src/pipeline/types.ts) from what the
 * credential checks vouched for. subject: the token's sub, else its client_id,
 * else the SPIFFE ID (or certificate subject), else the token's issuer.
 * Claims come from the first token; never the token itself.
 */
import type { Identity } from '../pipeline/types.ts';
import type { PeerFacts } from './mtls.ts';
import type { TokenFacts } from './result.ts';

const NO_CLAIMS: Readonly<Record<string, unknown>> = Object.freeze({});
const NO_VALUES: readonly string[] = Object.freeze([]);
const MTLS_ONLY: Identity['methods'] = Object.freeze(['mtls'] as const);

function union(a: readonly string[], b: readonly string[]): readonly string[] {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  return Object.freeze([...new Set([...a, ...b])]);
}

// Peer facts are memoized per connection (mtls.ts), so their identity can be too.
const byPeer = new WeakMap<PeerFacts, Identity>();

export function peerIdentity(peer: PeerFacts): Identity {
  let id = byPeer.get(peer);
  if (id === undefined) {
    id = makePeerIdentity(peer);
    byPeer.set(peer, id);
  }
  return id;
}

function makePeerIdentity(peer: PeerFacts): Identity {
  return Object.freeze({
    subject: peer.principal,
    methods: MTLS_ONLY,
    spiffeId: peer.spiffeId,
    issuer: null,
    clientId: null,
    scopes: NO_VALUES,
    groups: NO_VALUES,
    claims: NO_CLAIMS,
    tokenId: null,
    expiresAt: null,
  });
}

// One token (with or without the connection's peer) is the common case: the
// verified-token caches hand back the same TokenFacts object for the same
// token, so the same caller on the same connection gets the same Identity
// object on every request. Everything keyed by identity downstream (the
// upstream identity headers, the event's actor) is then computed once, not
// once per request.
const NO_PEER: object = Object.freeze({});
const byToken = new WeakMap<TokenFacts, WeakMap<object, Identity>>();

export function buildIdentity(peer: PeerFacts | null, tokens: readonly TokenFacts[]): Identity {
  const first = tokens[0];
  if (!first) {
    if (!peer) throw new Error('buildIdentity: no credential');
    return peerIdentity(peer);
  }
  if (tokens.length > 1) return makeIdentity(peer, tokens, first);
  let byPeerOfToken = byToken.get(first);
  if (byPeerOfToken === undefined) {
    byPeerOfToken = new WeakMap();
    byToken.set(first, byPeerOfToken);
  }
  let id = byPeerOfToken.get(peer ?? NO_PEER);
  if (id === undefined) {
    id = makeIdentity(peer, tokens, first);
    byPeerOfToken.set(peer ?? NO_PEER, id);
  }
  return id;
}

function makeIdentity(peer: PeerFacts | null, tokens: readonly TokenFacts[], first: TokenFacts): Identity {
  const methods: Identity['methods'][number][] = peer ? ['mtls'] : [];
  let scopes: readonly string[] = NO_VALUES;
  let groups: readonly string[] = NO_VALUES;
  let subject: string | null = null;
  let clientId: string | null = null;
  let expiresAt: number | null = null;
  for (const t of tokens) {
    if (!methods.includes(t.method)) methods.push(t.method);
    scopes = union(scopes, t.scopes);
    groups = union(groups, t.groups);
    subject ??= t.subject;
    clientId ??= t.clientId;
    if (t.expiresAt !== null) expiresAt = expiresAt === null ? t.expiresAt : Math.min(expiresAt, t.expiresAt);
  }
  return Object.freeze({
    subject: subject ?? clientId ?? peer?.principal ?? first.issuer ?? 'anonymous',
    methods: Object.freeze(methods),
    spiffeId: peer?.spiffeId ?? null,
    issuer: first.issuer,
    clientId,
    scopes,
    groups,
    claims: first.claims,
    tokenId: first.tokenId,
    expiresAt,
  });
}
