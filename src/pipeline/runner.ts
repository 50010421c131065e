/**
 * Drives the stages of a compiled policy in order. The first enforced deny
 * stops the request; a deny from a stage, rule or policy in audit (dry-run)
 * mode is recorded as would_deny and the request goes on.
 */
import type { Deny, RequestContext, Stage } from './types.ts';

export interface PipelineResult {
  /** The enforced deny, or null when every stage let the request through. */
  readonly deny: (Deny & { readonly stage: Stage['name'] }) | null;
}

const ALLOWED: PipelineResult = Object.freeze({ deny: null });

function elapsedUs(from: bigint): number {
  return Number(process.hrtime.bigint() - from) / 1000;
}

export async function runPipeline(stages: readonly Stage[], ctx: RequestContext): Promise<PipelineResult> {
  const policy = ctx.policy;
  for (const stage of stages) {
    const t0 = process.hrtime.bigint();
    let verdict = stage.run(ctx);
    // Most stages answer synchronously; only await real promises so the hot
    // path does not pay a microtask per stage.
    if (verdict instanceof Promise) verdict = await verdict;
    if (verdict.kind === 'continue') {
      ctx.timings.push({ stage: stage.name, us: elapsedUs(t0), outcome: 'continue' });
      continue;
    }
    const audit = verdict.audit === true || policy.auditAll || policy.auditStages.has(stage.name);
    if (audit) {
      ctx.timings.push({ stage: stage.name, us: elapsedUs(t0), outcome: 'would_deny' });
      ctx.wouldDeny.push({ stage: stage.name, code: verdict.code, rule: verdict.rule });
      continue;
    }
    ctx.timings.push({ stage: stage.name, us: elapsedUs(t0), outcome: 'deny' });
    return { deny: { ...verdict, stage: stage.name } };
  }
  return ALLOWED;
}
