/**
 * Drives the stages of a compiled policy in order, and is the one place that decides
 * whether a deny is enforced. Stages say what they found (a deny, and whether the rule or
 * entry that found it is itself in dry-run); the runner enforces it, or records it as
 * would_deny and goes on when the rule, the policy (spec.mode: audit) or the stage
 * (spec.auditStages) is in dry-run. The first enforced deny stops the request.
 */
import type { Deny, PipelinePolicy, RequestContext, Stage, StageName, Verdict } from './types.ts';

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

/**
 * Runs the stages in order. Synchronous while the stages are (the usual case: a request
 * without a body to read, or every stage before the one that reads it): a promise only from
 * the first stage that answers with one, the stages after it going on from there. An async
 * function made a promise and a microtask of every request, and the handler's await another.
 */
export function runPipeline(stages: readonly Stage[], ctx: RequestContext): PipelineResult | Promise<PipelineResult> {
  // One clock read per stage boundary (a stage's end is the next one's start), as a double:
  // process.hrtime.bigint() twice per stage allocated two BigInts and cost ~1 µs a request.
  return runFrom(stages, ctx, 0, performance.now());
}

function runFrom(stages: readonly Stage[], ctx: RequestContext, from: number, t0: number): PipelineResult | Promise<PipelineResult> {
  for (let k = from; k < stages.length; k++) {
    const stage = stages[k] as Stage;
    const found = ctx.wouldDeny.length;
    const verdict = stage.run(ctx);
    if (verdict instanceof Promise) return resume(stages, ctx, k, t0, found, verdict);
    const t1 = performance.now();
    const r = settle(ctx, stage, verdict, found, (t1 - t0) * 1000);
    if (r !== null) return r;
    t0 = t1;
  }
  return ALLOWED;
}

async function resume(stages: readonly Stage[], ctx: RequestContext, k: number, t0: number, found: number, pending: Promise<Verdict>): Promise<PipelineResult> {
  const verdict = await pending;
  const t1 = performance.now();
  const r = settle(ctx, stages[k] as Stage, verdict, found, (t1 - t0) * 1000);
  return r ?? runFrom(stages, ctx, k + 1, t1);
}

/** Times the stage's verdict; the enforced deny's result, or null to go on. */
function settle(ctx: RequestContext, stage: Stage, verdict: Verdict, found: number, us: number): PipelineResult | null {
  if (verdict.kind === 'continue') {
    // A stage that went on after dry-run findings (judged above) is timed as would_deny.
    ctx.timings.push({ stage: stage.name, us, outcome: ctx.wouldDeny.length > found ? 'would_deny' : 'continue' });
    return null;
  }
  if (!judge(ctx, stage.name, verdict)) {
    ctx.timings.push({ stage: stage.name, us, outcome: 'would_deny' });
    return null;
  }
  ctx.timings.push({ stage: stage.name, us, outcome: 'deny' });
  return { deny: { ...verdict, stage: stage.name } };
}
