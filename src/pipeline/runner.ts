/**
 * Drives the stages of a compiled policy in order, and is the one place that decides
 * whether a deny is enforced. Stages say what they found (a deny, and whether the rule or
 * entry that found it is itself in dry-run); the runner enforces it, or records it as
 * would_deny and goes on when the rule, the policy (spec.mode: audit) or the stage
 * (spec.auditStages) is in dry-run. The first enforced deny stops the request.
 */
import type { Deny, PipelinePolicy, RequestContext, Stage, StageName } from './types.ts';

export interface PipelineResult {
  /** The enforced deny, or null when every stage let the request through. */
  readonly deny: (Deny & { readonly stage: Stage['name'] }) | null;
}

const ALLOWED: PipelineResult = Object.freeze({ deny: null });

/** True when `d`, found by `stage`, is enforced under `policy`; false when it is dry-run. */
export function enforces(policy: PipelinePolicy, stage: StageName, d: Pick<Deny, 'audit'>): boolean {
  return d.audit !== true && !policy.auditAll && !policy.auditStages.has(stage);
}

/**
 * The runner's decision on a deny a stage found outside its verdict (a stage that goes on
 * after a dry-run finding, a body violation found while the body streams to the upstream):
 * true when enforced; otherwise the deny is recorded as would_deny and false is returned.
 */
export function judge(ctx: RequestContext, stage: StageName, d: Deny): boolean {
  if (enforces(ctx.policy, stage, d)) return true;
  ctx.wouldDeny.push({ stage, code: d.code, rule: d.rule });
  return false;
}

export async function runPipeline(stages: readonly Stage[], ctx: RequestContext): Promise<PipelineResult> {
  // One clock read per stage boundary (a stage's end is the next one's start), as a double:
  // process.hrtime.bigint() twice per stage allocated two BigInts and cost ~1 µs a request.
  let t0 = performance.now();
  for (const stage of stages) {
    const found = ctx.wouldDeny.length;
    let verdict = stage.run(ctx);
    // Most stages answer synchronously; only await real promises so the hot
    // path does not pay a microtask per stage.
    if (verdict instanceof Promise) verdict = await verdict;
    const t1 = performance.now();
    const us = (t1 - t0) * 1000;
    t0 = t1;
    if (verdict.kind === 'continue') {
      // A stage that went on after dry-run findings (judged above) is timed as would_deny.
      ctx.timings.push({ stage: stage.name, us, outcome: ctx.wouldDeny.length > found ? 'would_deny' : 'continue' });
      continue;
    }
    if (!judge(ctx, stage.name, verdict)) {
      ctx.timings.push({ stage: stage.name, us, outcome: 'would_deny' });
      continue;
    }
    ctx.timings.push({ stage: stage.name, us, outcome: 'deny' });
    return { deny: { ...verdict, stage: stage.name } };
  }
  return ALLOWED;
}
