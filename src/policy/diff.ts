/**
 * Replays recorded decisions against two policies' authorization and finds
 * the requests whose verdict changes. A decision record carries every fact
 * authorization reads (method, normalized path, host, identity with its
 * claims), so the replay is exact for that stage.
 *
 * Verdicts per side: allow, deny, or would_deny (a deny that audit mode,
 * auditStages or the rule's own audit flag lets through). Identical requests
 * (same method, path, host, subject and outcome on both sides) are grouped.
 */
import { compileAuthorization, type Authorizer } from '../authz/evaluate.ts';
import type { Code } from '../errors/codes.ts';
import type { DecisionRecord } from '../decision/record.ts';
import type { CompiledPolicy } from './compiled.ts';

export type Verdict = 'allow' | 'deny' | 'would_deny';

export interface SideOutcome {
  readonly verdict: Verdict;
  readonly code: Code | null;
  readonly rule: string | null;
}

export interface VerdictChange {
  readonly method: string;
  readonly path: string;
  readonly host: string;
  readonly subject: string | null;
  readonly old: SideOutcome;
  readonly new: SideOutcome;
  /** How many recorded requests had this exact change. */
  readonly count: number;
  /** What the sidecar recorded for the first of them (the stage may not be authz). */
  readonly recorded: { readonly verdict: 'allow' | 'deny'; readonly code: Code; readonly decidedBy: string };
  /** Time of the first such request, epoch ms. */
  readonly firstSeen: number;
}

export interface DiffSummary {
  readonly replayed: number;
  /** Records without a request to replay (connection-level errors). */
  readonly skipped: number;
  readonly changedRequests: number;
  readonly changes: readonly VerdictChange[];
}

function replayer(policy: CompiledPolicy): (r: DecisionRecord) => SideOutcome {
  const authz: Authorizer = compileAuthorization(policy.document.spec.authorization);
  const auditAll = policy.auditAll || policy.auditStages.has('authz');
  return (r) => {
    const out = authz.evaluate({ method: r.request.method, path: r.request.path, host: r.request.host, identity: r.identity });
    if (out.allow) return { verdict: 'allow', code: null, rule: out.rule };
    return { verdict: out.audit || auditAll ? 'would_deny' : 'deny', code: out.code ?? 'AUTHZ_NO_MATCHING_RULE', rule: out.rule };
  };
}

export interface Differ {
  add(record: DecisionRecord): void;
  summary(): DiffSummary;
}

export function createDiffer(oldPolicy: CompiledPolicy, newPolicy: CompiledPolicy): Differ {
  const before = replayer(oldPolicy);
  const after = replayer(newPolicy);
  const groups = new Map<string, VerdictChange & { count: number }>();
  let replayed = 0;
  let skipped = 0;
  let changed = 0;
  return {
    add(r) {
      if (!r.request.method || !r.request.path.startsWith('/')) {
        skipped++;
        return;
      }
      replayed++;
      const o = before(r);
      const n = after(r);
      if (o.verdict === n.verdict) return;
      changed++;
      const subject = r.identity?.subject ?? null;
      const key = JSON.stringify([r.request.method, r.request.path, r.request.host, subject, o, n]);
      const g = groups.get(key);
      if (g) g.count++;
      else {
        groups.set(key, {
          method: r.request.method,
          path: r.request.path,
          host: r.request.host,
          subject,
          old: o,
          new: n,
          count: 1,
          recorded: { verdict: r.verdict, code: r.code, decidedBy: r.decidedBy },
          firstSeen: r.time,
        });
      }
    },
    summary() {
      const changes = [...groups.values()].sort((a, b) => b.count - a.count || a.firstSeen - b.firstSeen);
      return { replayed, skipped, changedRequests: changed, changes };
    },
  };
}

export function describeOutcome(o: SideOutcome): string {
  if (o.verdict === 'allow') return `allow${o.rule ? ` by rule "${o.rule}"` : ''}`;
  return `${o.verdict} ${o.code}${o.rule ? ` by rule "${o.rule}"` : ' (no rule matches)'}`;
}
