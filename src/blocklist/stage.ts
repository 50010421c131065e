/**
 * The block list stage, first in the pipeline: denies requests from blocked
 * client IPs and networks and blocked mTLS peers before anything else runs.
 * Identity entries (subject, client id, token id) can only be checked once
 * authn has established the identity, so the same stage runs a second check
 * right after authn (its place in the stage registry, src/policy/stage-registry.ts);
 * both are recorded as stage "blocklist".
 *
 * Two sources, checked together: the policy's static entries (rebuilt on
 * every policy load) and the run-time store (detector, operators), which
 * outlives reloads. An enforced match wins over a dry-run (audit) match.
 */
import { parseIp } from '../http/cidr.ts';
import { CONTINUE, deny, type Deny, type ExplainRequest, type Identity, type RequestContext, type Stage, type StageExplanation, type StageBuilder } from '../pipeline/types.ts';
import type { PolicyDocument } from '../policy/document.ts';
import { stronger, type BlockIndex } from './block-index.ts';
import type { BlockEntry } from './entry.ts';
import { policyBlocklist } from './policy-blocklist.ts';
import { blockListStore, type BlockListStore } from './store.ts';

// The reason (a ticket, a detection with its baseline and threshold) is for operators: it goes
// to the decision event only. A blocked client learns that it is blocked, not why nor how far
// under a threshold to stay.
function verdict(e: BlockEntry): Deny {
  return deny('BLOCKED', e.rule, { reason: e.reason, audit: e.audit });
}

function describe(e: BlockEntry): string {
  return `${e.kind} ${e.value} is blocked by ${e.rule} (${e.source}${e.expiresAt !== null ? `, until ${new Date(e.expiresAt).toISOString()}` : ''}${e.audit ? ', audit: would deny' : ''}): ${e.reason}`;
}

/** Identity facts checked after authn, in order. */
function identityMatch(idx: BlockIndex | BlockListStore, id: Identity, peerSpiffe: string | null, now: number): BlockEntry | undefined {
  let hit: BlockEntry | undefined;
  hit = stronger(hit, idx.matchId('subject', id.subject, now));
  if (id.spiffeId !== null && id.spiffeId !== peerSpiffe) hit = stronger(hit, idx.matchId('spiffeId', id.spiffeId, now));
  if (id.clientId !== null) hit = stronger(hit, idx.matchId('clientId', id.clientId, now));
  if (id.tokenId !== null) hit = stronger(hit, idx.matchId('tokenId', id.tokenId, now));
  return hit;
}

function explainWith(parts: { idx: BlockIndex; store: BlockListStore; now: number }, req: ExplainRequest, identity: boolean): StageExplanation {
  const trace: string[] = [];
  let hit: BlockEntry | undefined;
  const { idx, store, now } = parts;
  if (!identity) {
    if (req.clientIp !== null) {
      const ip = parseIp(req.clientIp);
      if (!ip) trace.push(`client IP "${req.clientIp}" is not an address`);
      else hit = stronger(idx.matchIp(ip, now), store.matchIp(ip, now));
    }
    const spiffe = req.identity?.spiffeId ?? null;
    if (spiffe !== null) hit = stronger(hit, stronger(idx.matchId('spiffeId', spiffe, now), store.matchId('spiffeId', spiffe, now)));
  } else if (req.identity) {
    hit = stronger(identityMatch(idx, req.identity, null, now), identityMatch(store, req.identity, null, now));
  }
  if (hit) trace.push(describe(hit));
  else if (!identity) trace.push(`${req.clientIp === null ? 'no client IP given (--ip); ' : ''}not blocked (${idx.size} policy entries, ${store.size()} run-time entries)`);
  return { trace, deny: hit ? verdict(hit) : null };
}

/** First check: client IP / network and mTLS peer SPIFFE ID, before authn. */
export const buildBlocklistStage: StageBuilder = (doc, cc) => {
  const now = cc.services.now;
  const idx = policyBlocklist(doc, now()).index;
  const store = blockListStore(cc.services);
  // Per parsed address (one frozen object per address text, cidr.ts) and per mTLS peer (one
  // object per connection), the last "not blocked" with both lists' versions, as for identities
  // in the second check below: looked up again only once the lists changed.
  const clearIps = new WeakMap<object, { readonly idx: number; readonly store: number }>();
  const clearPeers = new WeakMap<object, { readonly idx: number; readonly store: number }>();
  const unchanged = (m: { readonly idx: number; readonly store: number } | undefined) => m !== undefined && m.idx === idx.version && m.store === store.version;
  const stage: Stage = {
    name: 'blocklist',
    run(ctx: RequestContext) {
      const staticNets = idx.hasNetEntries();
      if (!staticNets && store.isEmpty && idx.size === 0) return CONTINUE;
      const t = now();
      let hit: BlockEntry | undefined;
      const ip = parseIp(ctx.clientIp);
      if (ip && !unchanged(clearIps.get(ip))) {
        if (staticNets) hit = idx.matchIp(ip, t);
        if (!hit || hit.audit) hit = stronger(hit, store.matchIp(ip, t));
        if (!hit) clearIps.set(ip, { idx: idx.version, store: store.version });
      }
      const peer = ctx.tls?.peer ?? null;
      const spiffe = peer?.spiffeId ?? null;
      if (spiffe !== null && (!hit || hit.audit) && !unchanged(clearPeers.get(peer as object))) {
        const found = stronger(idx.matchId('spiffeId', spiffe, t), store.matchId('spiffeId', spiffe, t));
        if (!found) clearPeers.set(peer as object, { idx: idx.version, store: store.version });
        hit = stronger(hit, found);
      }
      return hit ? verdict(hit) : CONTINUE;
    },
    explain: (req) => explainWith({ idx, store, now: now() }, req, false),
  };
  return stage;
};

/** Second check, right after authn: the authenticated identity (subject, SPIFFE ID, client id, token id). */
export const buildBlocklistIdentityStage: StageBuilder = (doc, cc) => {
  const now = cc.services.now;
  const idx = policyBlocklist(doc, now()).index;
  const store = blockListStore(cc.services);
  // Per identity (frozen, made once per verified token or peer: authn/identity.ts), the last
  // "not blocked" with both lists' versions: looked up again only once an entry was added or
  // removed since (up to four hash probes into the 100,000-entry tables, per request, were the
  // stage's cost). A match is never remembered: its entry may expire.
  const clear = new WeakMap<Identity, { readonly idx: number; readonly store: number; readonly peer: string | null }>();
  const stage: Stage = {
    name: 'blocklist',
    run(ctx: RequestContext) {
      const id = ctx.identity;
      if (id === null || (!idx.hasIdentityEntries() && !store.hasIdentityEntries())) return CONTINUE;
      const peer = ctx.tls?.peer?.spiffeId ?? null;
      const last = clear.get(id);
      if (last !== undefined && last.idx === idx.version && last.store === store.version && last.peer === peer) return CONTINUE;
      const t = now();
      const hit = stronger(identityMatch(idx, id, peer, t), identityMatch(store, id, peer, t));
      if (hit) return verdict(hit);
      clear.set(id, { idx: idx.version, store: store.version, peer });
      return CONTINUE;
    },
    explain: (req) => explainWith({ idx, store, now: now() }, req, true),
  };
  return stage;
};

