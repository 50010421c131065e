/**
 * A deterministic mix of decision records covering every branch of recordDecision: allows
 * through all six stages, denies at each kind of stage, upstream null and not, upstream
 * errors, block-list hits, both rate-limit codes (rule and no rule), would-deny, stage errors,
 * requests with no route, zero and non-zero bytes, and durations from below the first
 * bucket to above the last one, including values exactly on a bucket bound.
 * Used by the exposition-equivalence test and by bench/metrics.ts.
 */
import type { DecisionRecord } from '../../../src/decision/record.ts';
import type { StageTiming } from '../../../src/pipeline/types.ts';
import { decisionRecord } from './record.ts';

const ROUTES = ['/orders/{id}', '/orders', '/users/{id}/profile', '/health', null] as const;
const FULL = ['blocklist', 'authn', 'ratelimit', 'authz', 'validation', 'forward'] as const;

/** A small LCG so the mix (and the float sums) is the same on every run. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

export function variedRecords(n: number, seed = 1): DecisionRecord[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  // Log-uniform from 1 us to 100 s, so every bucket (and the +Inf one) gets some.
  const ms = () => 10 ** (rnd() * 8 - 3);
  const us = () => Math.round(10 ** (rnd() * 6.5) * 100) / 100;
  const stages = (upTo: number, last: StageTiming['outcome']): StageTiming[] =>
    FULL.slice(0, upTo + 1).map((stage, i) => ({ stage, us: us(), outcome: i === upTo ? last : 'continue' }));
  const out: DecisionRecord[] = [];
  for (let i = 0; i < n; i++) {
    const route = pick(ROUTES);
    const base = { route, durationMs: ms(), request: { ...decisionRecord().request, route, bytesIn: rnd() < 0.5 ? 0 : Math.floor(rnd() * 5000) } };
    const kind = i < 12 ? i : Math.floor(rnd() * 12);
    let r: DecisionRecord;
    switch (kind) {
      case 0:
        r = decisionRecord({ ...base, upstreamMs: base.durationMs * 0.8, stages: stages(5, 'continue') });
        break;
      case 1: // exactly on bounds: 0.5 ms total, 10 us and 1 ms stages, 1 s upstream
        r = decisionRecord({ ...base, durationMs: 0.5, upstreamMs: 1000, stages: [{ stage: 'authn', us: 10, outcome: 'continue' }, { stage: 'forward', us: 1000, outcome: 'continue' }] });
        break;
      case 2:
        r = decisionRecord({ ...base, verdict: 'deny', decidedBy: 'authn', code: 'AUTHN_REQUIRED', rule: null, upstreamMs: null, stages: stages(1, 'deny'), response: { status: 401, bytesOut: 0 } });
        break;
      case 3:
        r = decisionRecord({ ...base, verdict: 'deny', decidedBy: 'authz', code: 'AUTHZ_NO_MATCHING_RULE', rule: null, upstreamMs: null, stages: stages(3, 'deny'), response: { status: 403, bytesOut: 90 } });
        break;
      case 4:
        r = decisionRecord({ ...base, verdict: 'deny', decidedBy: 'ratelimit', code: 'RATE_LIMITED', rule: pick(['per-client', 'per-ip-trial']), upstreamMs: null, stages: stages(2, 'deny'), response: { status: 429, bytesOut: 70 } });
        break;
      case 5:
        r = decisionRecord({ ...base, verdict: 'deny', decidedBy: 'ratelimit', code: 'RATE_LIMITED_GLOBAL', rule: null, upstreamMs: null, stages: stages(2, 'deny'), response: { status: 429, bytesOut: 70 } });
        break;
      case 6:
        r = decisionRecord({ ...base, verdict: 'deny', decidedBy: 'blocklist', code: 'BLOCKED', rule: null, upstreamMs: null, stages: stages(0, 'deny'), response: { status: 403, bytesOut: 60 } });
        break;
      case 7:
        r = decisionRecord({ ...base, verdict: 'deny', decidedBy: 'upstream', code: pick(['UPSTREAM_TIMEOUT', 'UPSTREAM_UNREACHABLE'] as const), rule: 'orders-read', upstreamMs: pick([null, base.durationMs * 0.9]), stages: stages(5, 'error'), response: { status: 504, bytesOut: 80 } });
        break;
      case 8: // audit mode: the validation deny was let through
        r = decisionRecord({ ...base, upstreamMs: base.durationMs / 2, stages: stages(5, 'continue').map((t) => (t.stage === 'validation' ? { ...t, outcome: 'would_deny' as const } : t)), wouldDeny: [{ stage: 'validation', code: 'SCHEMA_VIOLATION', rule: null }, ...(rnd() < 0.5 ? [{ stage: 'ratelimit' as const, code: 'RATE_LIMITED' as const, rule: 'per-client' }] : [])] });
        break;
      case 9: // refused before any stage ran
        r = decisionRecord({ ...base, route: null, request: { ...base.request, route: null }, verdict: 'deny', decidedBy: 'request', code: 'PATH_INVALID', rule: null, upstreamMs: null, stages: [], response: { status: 400, bytesOut: 0 } });
        break;
      case 10:
        r = decisionRecord({ ...base, verdict: 'deny', decidedBy: 'validation', code: 'SCHEMA_VIOLATION', rule: null, upstreamMs: null, stages: stages(4, 'deny') });
        break;
      default: // upstream longer than the total (clock skew): overhead clamps to 0
        r = decisionRecord({ ...base, upstreamMs: base.durationMs * 1.5, stages: stages(5, 'continue') });
    }
    out.push(r);
  }
  return out;
}
