/**
 * Replays one recorded decision through every stage of a policy, from the
 * facts the decision record holds: client IP, mTLS peer, the established
 * identity (with its claims), method, normalized path and host. Never a
 * token, a body, a query string or the headers: those are not recorded.
 *
 * Per stage:
 * - blocklist: the policy's entries against the IP, the peer and the identity
 *   (exact); a recorded block from the run-time list (detector, operators),
 *   which no policy holds, is kept as a fact;
 * - authn: the requirement of the route against the recorded credentials: the
 *   peer certificate (judged by the policy's mTLS rules), a token that
 *   verified (the identity's methods), or a token that was refused (a
 *   recorded authn deny). A token the recording does not show is taken as
 *   absent, and the outcome says so;
 * - ratelimit: bucket state cannot be rebuilt from a recording, so a recorded
 *   rate-limit deny (or would-deny) is kept as a fact while its rule still
 *   exists;
 * - authz: exact;
 * - validation: the route and its operation, path parameters (exact); the
 *   other recorded validation outcomes (body, query, headers, limits) are
 *   kept as facts.
 *
 * The first enforced deny decides, as in the sidecar; audit (dry-run) denies
 * come out as would_deny.
 */
import { compileAuthorization, type Authorizer } from '../authz/evaluate.ts';
import { policyBlocklist } from '../blocklist/policy-blocklist.ts';
import type { Code } from '../errors/codes.ts';
import type { DecisionRecord } from '../decision/record.ts';
import type { Deny, ExplainRequest, Identity, StageName, WouldDeny } from '../pipeline/types.ts';
import type { CompiledPolicy } from './compiled.ts';

export type ReplayVerdict = 'allow' | 'deny' | 'would_deny';

export interface ReplayOutcome {
  readonly verdict: ReplayVerdict;
  readonly code: Code | null;
  /** The rule, requirement, entry or operation that decided; for allows, the authorization rule. */
  readonly rule: string | null;
  /** The stage that decided (null for allows). */
  readonly stage: StageName | null;
  /** What the replay took from the recording rather than computed; empty when exact. */
  readonly notes: readonly string[];
}

/** Authentication codes that mean a token was presented and refused (or could not be checked). */
const NOT_TOKEN: ReadonlySet<Code> = new Set<Code>(['AUTHN_REQUIRED', 'AUTHN_PEER_REQUIRED', 'AUTHN_PEER_NOT_ALLOWED']);
/** Validation codes the replay computes itself; every other recorded validation outcome is kept. */
const VALIDATION_REPLAYED: ReadonlySet<Code> = new Set<Code>(['ROUTE_UNKNOWN']);

/** A recorded deny of a check the replay cannot redo. */
interface Kept {
  readonly stage: StageName;
  readonly code: Code;
  readonly rule: string | null;
  /** Recorded as would_deny (dry-run) rather than enforced. */
  readonly dryRun: boolean;
}

export interface Replayer {
  replay(r: DecisionRecord): ReplayOutcome;
}

/**
 * Which recorded denies are facts the replay keeps, in stage order. A block
 * from the run-time block list (the detector's, an operator's) is one: that
 * list is not part of any policy, so it stands whichever policy is replayed.
 */
function keptFacts(r: DecisionRecord, policyEntries: ReadonlySet<string>): Kept[] {
  const out: Kept[] = [];
  const keep = (stage: string, code: Code, rule: string | null, dryRun: boolean) => {
    const runTimeBlock = stage === 'blocklist' && code === 'BLOCKED' && rule !== null && !rule.startsWith('policy:') && !policyEntries.has(rule);
    if (runTimeBlock || stage === 'ratelimit' || (stage === 'validation' && !VALIDATION_REPLAYED.has(code))) out.push({ stage, code, rule, dryRun });
  };
  for (const w of r.wouldDeny) keep(w.stage, w.code, w.rule, true);
  if (r.verdict === 'deny') keep(r.decidedBy, r.code, r.rule, false);
  return out;
}

/** The mTLS peer as an identity: what the stages before authn see. */
function peerIdentity(r: DecisionRecord): Identity | null {
  const peer = r.tls?.peer;
  if (!peer) return null;
  return { subject: peer.spiffeId ?? peer.subject, methods: ['mtls'], spiffeId: peer.spiffeId, issuer: null, clientId: null, scopes: [], groups: [], claims: {}, tokenId: null, expiresAt: null };
}

const hasToken = (id: Identity | null) => id !== null && id.methods.some((m) => m !== 'mtls');

/**
 * @param recordedUnder the policy the recording was made under (for a kept
 *   dry-run fact: was it dry-run because that policy audited the whole stage?)
 */
export function createReplayer(policy: CompiledPolicy, recordedUnder: CompiledPolicy): Replayer {
  const authz: Authorizer = compileAuthorization(policy.document.spec.authorization);
  const rl = policy.document.spec.rateLimits;
  const rateRules = new Map(rl.rules.map((x) => [x.id, x.audit] as const));
  const audits = (p: CompiledPolicy, s: StageName) => p.auditAll || p.auditStages.has(s);
  const recordedEntries = policyBlocklist(recordedUnder.document, Date.now()).ids;

  /** A kept fact on this side: null when its rule is gone; else a deny with this policy's dry-run status. */
  function keptDeny(k: Kept): (Deny & { readonly audit: boolean }) | null {
    let ruleAudit = false;
    if (k.stage === 'ratelimit') {
      if (k.code === 'RATE_LIMITED_GLOBAL') {
        if (!rl.global) return null;
        ruleAudit = rl.global.audit;
      } else {
        const a = k.rule === null ? undefined : rateRules.get(k.rule);
        if (a === undefined) return null;
        ruleAudit = a;
      }
    } else if (k.stage === 'blocklist') {
      // A run-time entry's own dry-run flag is what the record shows.
      ruleAudit = k.dryRun && !audits(recordedUnder, 'blocklist');
    } else if (k.dryRun && !audits(recordedUnder, k.stage)) {
      // Dry-run by its own rule (an operation, a limits route): the rule's audit flag is not in the record.
      ruleAudit = true;
    }
    return { kind: 'deny', code: k.code, rule: k.rule, audit: ruleAudit };
  }

  return {
    replay(r) {
      const notes: string[] = [];
      const kept = keptFacts(r, recordedEntries);
      let runTimeBlockSeen = false;
      const tokenFailure = r.decidedBy === 'authn' && r.verdict === 'deny' && !NOT_TOKEN.has(r.code) ? r.code : null;
      // Before authn the stages see the peer; after it, what authn establishes on this side.
      let identity: Identity | null = r.identity ?? peerIdentity(r);
      if (r.identity && r.tls?.peer && r.identity.spiffeId === null && r.tls.peer.spiffeId !== null) identity = { ...r.identity, spiffeId: r.tls.peer.spiffeId };
      let allowRule: string | null = null;
      let dryRun: WouldDeny | null = null;
      for (const stage of policy.stages) {
        const req: ExplainRequest = { method: r.request.method, path: r.request.path, host: r.request.host, identity, clientIp: r.client.ip || null, tokenFailure };
        let d: Deny | null = null;
        if (stage.name === 'authz') {
          const out = authz.evaluate({ method: req.method, path: req.path, host: req.host, identity });
          if (out.allow) allowRule = out.rule;
          else d = { kind: 'deny', code: out.code ?? 'AUTHZ_NO_MATCHING_RULE', rule: out.rule, audit: out.audit };
        } else if (stage.name === 'ratelimit') {
          for (const k of kept) {
            if (k.stage !== 'ratelimit') continue;
            d = keptDeny(k);
            if (d) {
              notes.push(`rate limit "${k.rule ?? 'global'}": the recorded ${k.code} is kept (bucket state cannot be replayed)`);
              break;
            }
          }
        } else if (stage.explain) {
          const e = stage.explain(req);
          d = e.deny;
          if (stage.name === 'authn') {
            if (e.identity !== undefined) identity = e.identity;
            if (d?.code === 'AUTHN_REQUIRED' && !hasToken(r.identity) && tokenFailure === null) notes.push('the recording shows no verified token for this request (tokens are never recorded), so it is taken as absent');
            if (d && tokenFailure !== null && d.code === tokenFailure) notes.push(`the recorded token refusal (${tokenFailure}) is kept`);
          }
          if (stage.name === 'blocklist' && d === null && !runTimeBlockSeen) {
            // Once, at the block list's first check (where the sidecar found it: the IP or the peer; identity blocks are found at the second).
            runTimeBlockSeen = true;
            const k = kept.find((x) => x.stage === 'blocklist');
            if (k) {
              d = keptDeny(k);
              notes.push(`the run-time block "${k.rule}" (not part of a policy) is kept as recorded`);
            }
          }
          if (stage.name === 'validation' && d === null) {
            for (const k of kept) {
              if (k.stage !== 'validation') continue;
              d = keptDeny(k);
              if (d) {
                notes.push(`validation: the recorded ${k.code} is kept (bodies, query strings and headers are not recorded)`);
                break;
              }
            }
          }
        }
        if (!d) continue;
        if (d.audit === true || audits(policy, stage.name)) {
          // The sidecar records it and goes on; so does the replay. The first one names the would_deny.
          dryRun ??= { stage: stage.name, code: d.code, rule: d.rule };
          continue;
        }
        return { verdict: 'deny', code: d.code, rule: d.rule, stage: stage.name, notes };
      }
      if (dryRun) return { verdict: 'would_deny', code: dryRun.code, rule: dryRun.rule, stage: dryRun.stage, notes };
      return { verdict: 'allow', code: null, rule: allowRule, stage: null, notes };
    },
  };
}
