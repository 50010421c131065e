/**
 * The rate-limit stage (after authn, so buckets can be keyed by identity):
 * every rule whose methods and paths match takes one token from its bucket;
 * if any enforced bucket is empty the request is refused with 429,
 * Retry-After, and the RateLimit/RateLimit-Policy fields, and no bucket is
 * charged. Allowed responses carry the same fields. A dry-run (audit) rule
 * that runs dry is recorded as would_deny and never shown to the client.
 */
import { CONTINUE, deny, type Deny, type RequestContext, type Stage, type StageExplanation, type StageBuilder } from '../pipeline/types.ts';
import type { Bucket } from './bucket-store.ts';
import { limitItem } from './headers.ts';
import { compileGlobal, compileRules, retainOnly, type CompiledRule, type GlobalLimit, type Limit } from './rules.ts';

interface Draw {
  readonly limit: Limit;
  readonly bucket: Bucket;
  /** Tokens after refill, before this request. */
  readonly tokens: number;
}

function refilled(limit: Limit, b: Bucket, now: number): number {
  const t = b.tokens + (now - b.at) * limit.perMs;
  return t > limit.burst ? limit.burst : t;
}

/** Seconds until the bucket is full again, holding `tokens`. */
function resetSeconds(limit: Limit, tokens: number): number {
  return Math.max(0, Math.ceil((limit.burst - tokens) / limit.perMs / 1000));
}

export const buildRateLimitStage: StageBuilder = (doc, cc) => {
  const spec = doc.spec.rateLimits;
  const used = new Set<string>();
  const rules: CompiledRule[] = compileRules(spec.rules, spec.maxKeys, cc.services, used);
  const global: GlobalLimit | null = compileGlobal(spec.global, cc.services, used);
  retainOnly(cc.services, used);
  if (rules.length === 0 && !global) return null;
  cc.addRoutes(spec.rules.flatMap((r) => r.paths.filter((p) => p !== '/**').map((template) => ({ template, methods: r.methods }))));
  const now = cc.services.now;

  function headersOf(draws: readonly Draw[], denied: Draw | null): Record<string, string> | null {
    let policy = '';
    let state = '';
    for (const d of draws) {
      if (d.limit.audit) continue;
      const after = d === denied || d.tokens < 1 ? d.tokens : d.tokens - 1;
      policy += (policy ? ', ' : '') + d.limit.policyItem;
      state += (state ? ', ' : '') + limitItem(d.limit.id, Math.floor(after), resetSeconds(d.limit, after));
    }
    return policy ? { 'ratelimit-policy': policy, ratelimit: state } : null;
  }

  const stage: Stage = {
    name: 'ratelimit',
    run(ctx: RequestContext) {
      const t = now();
      const draws: Draw[] = [];
      if (global) draws.push({ limit: global, bucket: global.bucket, tokens: refilled(global, global.bucket, t) });
      for (const r of rules) {
        if (!r.matches(ctx.method, ctx.path)) continue;
        const key = r.keyOf(ctx);
        let b = r.store.get(key, t);
        if (b === undefined) {
          b = { tokens: r.burst, at: t };
          r.store.set(key, b, t);
        }
        draws.push({ limit: r, bucket: b, tokens: refilled(r, b, t) });
      }
      if (draws.length === 0) return CONTINUE;
      let enforced: Draw | null = null;
      let audited: Draw | null = null;
      for (const d of draws) {
        if (d.tokens >= 1) continue;
        if (!d.limit.audit) {
          enforced = d;
          break;
        }
        audited ??= d;
      }
      if (enforced) {
        // Refused requests are not charged: a client that backs off gets its tokens back on schedule.
        for (const d of draws) {
          d.bucket.tokens = d.tokens;
          d.bucket.at = t;
        }
        const l = enforced.limit;
        const retryAfter = Math.max(1, Math.ceil((1 - enforced.tokens) / l.perMs / 1000));
        const headers = { ...headersOf(draws, enforced), 'retry-after': String(retryAfter) };
        // The client is told when to come back (Retry-After and RateLimit, standard: what a
        // well-behaved caller needs); the sentence naming the refusing rule goes to the event.
        return deny(l === global ? 'RATE_LIMITED_GLOBAL' : 'RATE_LIMITED', l.id, { reason: `rate limit "${l.id}" exceeded; retry after ${retryAfter} s`, detail: 'retry after the number of seconds in Retry-After', headers });
      }
      for (const d of draws) {
        d.bucket.tokens = d.tokens >= 1 ? d.tokens - 1 : d.tokens;
        d.bucket.at = t;
      }
      const h = headersOf(draws, null);
      if (h) ctx.responseHeaders = ctx.responseHeaders ? Object.assign(ctx.responseHeaders, h) : h;
      if (audited) {
        const l = audited.limit;
        return deny(l === global ? 'RATE_LIMITED_GLOBAL' : 'RATE_LIMITED', l.id, { audit: true }) as Deny;
      }
      return CONTINUE;
    },
    explain(req): StageExplanation {
      const trace: string[] = [];
      if (global) trace.push(`global rate limit: ${global.describe}`);
      for (const r of rules) if (r.matches(req.method, req.path)) trace.push(`rate limit "${r.id}" applies: ${r.describe}`);
      if (trace.length === 0) trace.push('no rate limit applies to this route');
      return { trace, deny: null };
    },
  };
  return stage;
};
