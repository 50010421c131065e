/**
 * The rate-limit stage (after authn, so buckets can be keyed by identity):
 * every rule whose methods and paths match takes one token from its bucket;
 * if any enforced bucket is empty the request is refused with 429,
 * Retry-After, and the RateLimit/RateLimit-Policy fields, and no bucket is
 * charged. Allowed responses carry the same fields. A dry-run (audit) rule
 * that runs dry is recorded as would_deny and never shown to the client.
 *
 * Global rules (scope: global, fleet-wide quotas) are answered from memory:
 * one lookup in the quota store the quota topic fills (quota-store.ts). A
 * key over quota is refused with QUOTA_EXCEEDED until its window ends; a key
 * near it spends this sidecar's fair share of what is left. A request let
 * through is recorded in the decision (`quotas`) for the aggregator to count.
 */
import { CONTINUE, deny, type Deny, type ExplainRequest, type RequestContext, type Stage, type StageExplanation, type StageBuilder } from '../pipeline/types.ts';
import type { Bucket } from './bucket-store.ts';
import { limitItem } from './headers.ts';
import { quotaStore } from './quota-store.ts';
import { compileGlobal, compileQuotas, compileRules, retainOnly, type CompiledRule, type GlobalLimit, type Limit, type QuotaRule } from './rules.ts';

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

/** The few request facts a quota key reads, from an explain request. */
function explainContext(req: ExplainRequest): RequestContext {
  return { method: req.method, path: req.path, identity: req.identity, clientIp: req.clientIp ?? '-', route: null, tls: null } as unknown as RequestContext;
}

export const buildRateLimitStage: StageBuilder = (doc, cc) => {
  const spec = doc.spec.rateLimits;
  const used = new Set<string>();
  const rules: CompiledRule[] = compileRules(spec.rules, spec.maxKeys, cc.services, used);
  const global: GlobalLimit | null = compileGlobal(spec.global, cc.services, used);
  retainOnly(cc.services, used);
  const quotas: QuotaRule[] = compileQuotas(spec.rules, doc.metadata.name);
  const qstore = quotaStore(cc.services);
  if (rules.length === 0 && !global && quotas.length === 0) return null;
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

  /**
   * The global quotas for this request: a refusal (enforced, or audit), or null after recording
   * the charges. Runs after the local buckets agreed, so a refused request is never counted.
   */
  function checkQuotas(ctx: RequestContext, t: number): Deny | null {
    let audited: Deny | null = null;
    let policy = '';
    for (const q of quotas) {
      if (!q.matches(ctx.method, ctx.path)) continue;
      const key = q.keyOf(ctx);
      const e = qstore.get(q.prefix + key, t);
      policy += (policy ? ', ' : '') + q.policyItem;
      if (e !== undefined && (e.state === 'over' || e.left <= 0)) {
        const retryAfter = Math.max(1, Math.ceil((e.until - t) / 1000));
        if (!q.audit) {
          const headers = { 'ratelimit-policy': q.policyItem, ratelimit: limitItem(q.id, 0, retryAfter), 'retry-after': String(retryAfter) };
          // The sidecar's share running out ("near") is recorded as such: it tells overshoot control from the fleet's verdict.
          const why = e.state === 'over' ? 'is used up across the fleet' : "reached this sidecar's share of what was left";
          return deny('QUOTA_EXCEEDED', q.id, { reason: `global quota "${q.id}" (${q.limit} per ${q.windowMs / 1000} s) ${why}; window ends in ${retryAfter} s`, detail: 'retry after the number of seconds in Retry-After', headers });
        }
        audited ??= deny('QUOTA_EXCEEDED', q.id, { audit: true });
      } else if (e !== undefined) {
        e.left--;
      }
      (ctx.quotaCharges ??= []).push({ rule: q.id, key, limit: q.limit, windowMs: q.windowMs });
    }
    if (policy) {
      const h = ctx.responseHeaders;
      if (h?.['ratelimit-policy']) h['ratelimit-policy'] += `, ${policy}`;
      else ctx.responseHeaders = h ? Object.assign(h, { 'ratelimit-policy': policy }) : { 'ratelimit-policy': policy };
    }
    return audited;
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
      if (draws.length === 0) return quotas.length > 0 ? (checkQuotas(ctx, t) ?? CONTINUE) : CONTINUE;
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
      if (quotas.length > 0) {
        const q = checkQuotas(ctx, t);
        // An enforced quota refusal wins over a local audit finding; the buckets already charged
        // keep their charge (the request did arrive; local limits protect this sidecar).
        if (q && (!q.audit || !audited)) return q;
      }
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
      for (const q of quotas) {
        if (!q.matches(req.method, req.path)) continue;
        trace.push(`quota "${q.id}" applies: ${q.describe}; beyond it: ${q.audit ? 'recorded as would_deny (audit)' : '429 QUOTA_EXCEEDED with Retry-After until the window ends'}`);
        const over = qstore.get(q.prefix + q.keyOf(explainContext(req)), now());
        if (over) trace.push(`quota "${q.id}": this key is ${over.state === 'over' ? 'over quota' : `near quota (${over.left} left at this sidecar)`} until ${new Date(over.until).toISOString()}`);
      }
      if (trace.length === 0) trace.push('no rate limit applies to this route');
      return { trace, deny: null };
    },
  };
  return stage;
};
