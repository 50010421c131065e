/**
 * Replays recorded decisions through every stage of two policies (replay.ts)
 * and finds the requests whose outcome changes: verdict (allow, deny,
 * would_deny), code, stage or rule. Identical changes (same method, path,
 * host, subject and outcome on both sides) are grouped.
 *
 * The recording is taken to come from the old policy (the one in force):
 * records made under another policy are counted, since what the replay keeps
 * from them (rate-limit and body outcomes) came from that policy.
 */
import type { Code } from '../errors/codes.ts';
import type { DecisionRecord } from '../decision/record.ts';
import type { CompiledPolicy } from './compiled.ts';
import { createReplayer, type ReplayOutcome } from './replay.ts';

export type { ReplayOutcome as SideOutcome } from './replay.ts';

export interface VerdictChange {
  readonly method: string;
  readonly path: string;
  readonly host: string;
  readonly subject: string | null;
  readonly old: ReplayOutcome;
  readonly new: ReplayOutcome;
  /** How many recorded requests had this exact change. */
  readonly count: number;
  /** What the sidecar recorded for the first of them. */
  readonly recorded: { readonly verdict: 'allow' | 'deny'; readonly code: Code; readonly decidedBy: string; readonly rule: string | null };
  /** Time of the first such request, epoch ms. */
  readonly firstSeen: number;
}

export interface DiffSummary {
  readonly replayed: number;
  /** Records with no request to replay, or decided before any stage (a malformed request line or target). */
  readonly skipped: number;
  /** Replayed records made under a policy other than the old one (by hash). */
  readonly otherPolicy: number;
  readonly changedRequests: number;
  readonly changes: readonly VerdictChange[];
}

export interface Differ {
  add(record: DecisionRecord): void;
  summary(): DiffSummary;
}

const sameOutcome = (a: ReplayOutcome, b: ReplayOutcome) => a.verdict === b.verdict && a.code === b.code && a.stage === b.stage && a.rule === b.rule;

export function createDiffer(oldPolicy: CompiledPolicy, newPolicy: CompiledPolicy): Differ {
  const before = createReplayer(oldPolicy, oldPolicy);
  const after = createReplayer(newPolicy, oldPolicy);
  const groups = new Map<string, VerdictChange & { count: number }>();
  let replayed = 0;
  let skipped = 0;
  let otherPolicy = 0;
  let changed = 0;
  return {
    add(r) {
      // The HTTP layer refused these before any stage ran: no policy changes that.
      if (!r.request.method || !r.request.path.startsWith('/') || r.decidedBy === 'request' || r.decidedBy === 'sidecar') {
        skipped++;
        return;
      }
      replayed++;
      // A standard event carries the hash's first 16 hex digits (src/decision/ocsf/standard.ts).
      if (r.policy && r.policy.hash !== oldPolicy.hash && !(r.policy.hash.length >= 16 && oldPolicy.hash.startsWith(r.policy.hash))) otherPolicy++;
      const o = before.replay(r);
      const n = after.replay(r);
      if (sameOutcome(o, n)) return;
      changed++;
      const subject = r.identity?.subject ?? r.tls?.peer?.spiffeId ?? null;
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
          recorded: { verdict: r.verdict, code: r.code, decidedBy: r.decidedBy, rule: r.rule },
          firstSeen: r.time,
        });
      }
    },
    summary() {
      const changes = [...groups.values()].sort((a, b) => b.count - a.count || a.firstSeen - b.firstSeen);
      return { replayed, skipped, otherPolicy, changedRequests: changed, changes };
    },
  };
}

export function describeOutcome(o: ReplayOutcome): string {
  if (o.verdict === 'allow') return `allow${o.rule ? ` by rule "${o.rule}"` : ''}`;
  const by = o.rule ? ` by rule "${o.rule}"` : o.stage === 'authz' ? ' (no rule matches)' : o.stage === 'authn' ? ' (the default requirement)' : '';
  return `${o.verdict} ${o.code} at ${o.stage}${by}`;
}
