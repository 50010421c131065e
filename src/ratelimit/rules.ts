/**
 * Rate-limit rules compiled for the request path: which requests a rule
 * covers, how a request's bucket key is made, and the token-bucket numbers.
 * Buckets live in BucketStores kept across policy reloads (service part
 * "ratelimit"), so a reload that keeps a rule unchanged keeps its buckets.
 */
import type { RequestContext } from '../pipeline/types.ts';
import type { Method, RateLimitKeyPart, RateLimitRuleSpec, RatePer } from '../policy/document.ts';
import { compilePathPattern } from '../policy/path-pattern.ts';
import { servicePart, type Services } from '../pipeline/services.ts';
import { BucketStore, type Bucket } from './bucket-store.ts';
import { policyItem } from './headers.ts';

const PER_MS: Record<RatePer, number> = { second: 1000, minute: 60_000, hour: 3_600_000 };

export interface Limit {
  readonly id: string;
  readonly audit: boolean;
  readonly burst: number;
  /** Tokens added per millisecond. */
  readonly perMs: number;
  /** `"id";q=burst;w=window`, precomputed. */
  readonly policyItem: string;
  readonly describe: string;
}

export interface CompiledRule extends Limit {
  readonly store: BucketStore;
  readonly key: readonly RateLimitKeyPart[];
  matches(method: string, path: string): boolean;
  keyOf(ctx: RequestContext): string;
}

export interface GlobalLimit extends Limit {
  readonly bucket: Bucket;
}

/** Long-lived rate-limit state: stores by rule signature, the global bucket. */
interface RateLimitState {
  stores: Map<string, BucketStore>;
  global: Map<string, Bucket>;
}

declare module '../pipeline/services.ts' {
  interface ServiceParts {
    ratelimit: RateLimitState;
  }
}

export function rateLimitState(services: Services): RateLimitState {
  return servicePart(services, 'ratelimit', () => ({ stores: new Map(), global: new Map() }));
}

function limitOf(id: string, rate: number, per: RatePer, burstSpec: number | undefined, audit: boolean): Limit {
  const burst = burstSpec ?? Math.max(1, Math.ceil(rate));
  const perMs = rate / PER_MS[per];
  const window = Math.max(1, Math.ceil(burst / perMs / 1000));
  return { id, audit, burst, perMs, policyItem: policyItem(id, burst, window), describe: `${rate} per ${per}, burst ${burst}${audit ? ' (audit)' : ''}` };
}

/** Where identity-based parts are missing (anonymous request), the client IP stands in. */
function part(p: RateLimitKeyPart): (ctx: RequestContext) => string {
  switch (p) {
    case 'identity':
      return (ctx) => (ctx.identity ? ctx.identity.subject : `ip:${ctx.clientIp}`);
    case 'spiffeId':
      return (ctx) => ctx.identity?.spiffeId ?? ctx.tls?.peer?.spiffeId ?? `ip:${ctx.clientIp}`;
    case 'subject':
      return (ctx) => {
        const sub = ctx.identity?.claims['sub'];
        return typeof sub === 'string' ? sub : `ip:${ctx.clientIp}`;
      };
    case 'clientId':
      return (ctx) => ctx.identity?.clientId ?? `ip:${ctx.clientIp}`;
    case 'ip':
      return (ctx) => ctx.clientIp;
    case 'route':
      // The template, never the raw path: a client cannot mint keys by varying ids.
      return (ctx) => ctx.route?.template ?? '-';
    case 'method':
      return (ctx) => ctx.method;
  }
}

function matcher(methods: readonly Method[], paths: readonly string[]): (method: string, path: string) => boolean {
  const anyMethod = methods.includes('*');
  const ms = new Set<string>(methods);
  if (paths.includes('/**')) return anyMethod ? () => true : (m) => ms.has(m);
  const patterns = paths.map((p) => compilePathPattern(p));
  return (m, path) => (anyMethod || ms.has(m)) && patterns.some((p) => p.match(path) !== null);
}

export function compileRules(rules: readonly RateLimitRuleSpec[], maxKeys: number, services: Services, used: Set<string>): CompiledRule[] {
  const state = rateLimitState(services);
  const ids = new Set<string>();
  return rules.map((r, i) => {
    if (ids.has(r.id)) throw new Error(`spec.rateLimits.rules[${i}]: rule id "${r.id}" is used twice; rule ids must be unique`);
    ids.add(r.id);
    const limit = limitOf(r.id, r.rate, r.per, r.burst, r.audit);
    const signature = JSON.stringify([r.id, r.key, limit.perMs, limit.burst, maxKeys]);
    used.add(signature);
    let store = state.stores.get(signature);
    if (!store) {
      store = new BucketStore(maxKeys, limit.burst / limit.perMs, services.now());
      state.stores.set(signature, store);
    }
    const fns = r.key.map(part);
    const keyOf = fns.length === 1 ? (fns[0] as (ctx: RequestContext) => string) : (ctx: RequestContext) => fns.map((f) => f(ctx)).join('\u0000');
    return { ...limit, describe: `${limit.describe}, keyed by ${r.key.join('+')}`, store, key: r.key, matches: matcher(r.methods, r.paths), keyOf };
  });
}

export function compileGlobal(spec: { rate: number; per: RatePer; burst?: number; audit: boolean } | undefined, services: Services, used: Set<string>): GlobalLimit | null {
  if (!spec) return null;
  const limit = limitOf('global', spec.rate, spec.per, spec.burst, spec.audit);
  const state = rateLimitState(services);
  const signature = JSON.stringify(['global', limit.perMs, limit.burst]);
  used.add(signature);
  let bucket = state.global.get(signature);
  if (!bucket) {
    bucket = { tokens: limit.burst, at: services.now() };
    state.global.set(signature, bucket);
  }
  return { ...limit, bucket };
}

/** Forgets stores and buckets no rule of the newly compiled policy uses. */
export function retainOnly(services: Services, used: ReadonlySet<string>): void {
  const state = rateLimitState(services);
  for (const k of state.stores.keys()) if (!used.has(k)) state.stores.delete(k);
  for (const k of state.global.keys()) if (!used.has(k)) state.global.delete(k);
}
