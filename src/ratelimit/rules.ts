/**
 * Rate-limit rules compiled for the request path: which requests a rule
 * covers, how a request's bucket key is made, and the token-bucket numbers.
 * Buckets live in BucketStores kept across policy reloads (service part
 * "ratelimit"), so a reload that keeps a rule unchanged keeps its buckets.
 */
import type { RequestContext } from '../pipeline/types.ts';
import type { Method, QuotaWindow, RateLimitKeyPart, RateLimitRuleSpec, RatePer } from '../policy/document.ts';
import { compilePathPattern } from '../policy/path-pattern.ts';
import { servicePart, type Services } from '../pipeline/services.ts';
import { BucketStore, type Bucket } from './bucket-store.ts';
import { policyItem } from './headers.ts';
import { quotaStoreKey } from './quota-record.ts';

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

const WINDOW_MS: Record<QuotaWindow, number> = { second: 1000, minute: 60_000, hour: 3_600_000, day: 86_400_000 };

/** A fleet-wide quota (scope: global), answered from the quota store (quota-store.ts). */
export interface QuotaRule {
  readonly id: string;
  readonly audit: boolean;
  readonly limit: number;
  readonly windowMs: number;
  /** `"id";q=limit;w=window`, precomputed. */
  readonly policyItem: string;
  readonly describe: string;
  /** "<workload>\0<rule>\0": the store key is this plus the request's key. */
  readonly prefix: string;
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
  if (p.startsWith('claim:')) {
    const name = p.slice('claim:'.length);
    return (ctx) => {
      const v = ctx.identity?.claims[name];
      return typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : `ip:${ctx.clientIp}`;
    };
  }
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
    default:
      throw new Error(`unknown rate-limit key part "${p}"`);
  }
}

function keyFn(key: readonly RateLimitKeyPart[]): (ctx: RequestContext) => string {
  const fns = key.map(part);
  if (fns.length === 1) return fns[0] as (ctx: RequestContext) => string;
  // The parts joined by NUL, without an array per request (map + join).
  return (ctx: RequestContext) => {
    let key = (fns[0] as (ctx: RequestContext) => string)(ctx);
    for (let i = 1; i < fns.length; i++) key += `\u0000${(fns[i] as (ctx: RequestContext) => string)(ctx)}`;
    return key;
  };
}

function matcher(methods: readonly Method[], paths: readonly string[]): (method: string, path: string) => boolean {
  const anyMethod = methods.includes('*');
  const ms = new Set<string>(methods);
  if (paths.includes('/**')) return anyMethod ? () => true : (m) => ms.has(m);
  const patterns = paths.map((p) => compilePathPattern(p));
  return (m, path) => (anyMethod || ms.has(m)) && patterns.some((p) => p.match(path) !== null);
}

/** Rule ids are unique across local and global rules: a decision names one rule. */
function checkIds(rules: readonly RateLimitRuleSpec[]): void {
  const ids = new Set<string>();
  rules.forEach((r, i) => {
    if (ids.has(r.id)) throw new Error(`spec.rateLimits.rules[${i}]: rule id "${r.id}" is used twice; rule ids must be unique`);
    ids.add(r.id);
  });
}

/** The global rules (scope: global) of the policy; `workload` is its metadata.name, shared by the replicas. */
export function compileQuotas(rules: readonly RateLimitRuleSpec[], workload: string): QuotaRule[] {
  const out: QuotaRule[] = [];
  rules.forEach((r, i) => {
    if (r.scope !== 'global') {
      if (r.limit !== undefined || r.window !== undefined) throw new Error(`spec.rateLimits.rules[${i}] ("${r.id}"): limit and window are for scope: global; add scope: global, or use rate/per/burst for a local bucket`);
      return;
    }
    if (r.rate !== undefined || r.burst !== undefined) throw new Error(`spec.rateLimits.rules[${i}] ("${r.id}"): a global quota counts \`limit\` requests per \`window\`; remove rate/burst, or make it a separate local rule`);
    const limit = r.limit as number;
    const window = r.window as QuotaWindow;
    const windowMs = WINDOW_MS[window];
    out.push({
      id: r.id,
      audit: r.audit,
      limit,
      windowMs,
      policyItem: policyItem(r.id, limit, windowMs / 1000),
      describe: `global quota: ${limit} per ${window} across all sidecars of "${workload}", keyed by ${r.key.join('+')}${r.audit ? ' (audit)' : ''}`,
      prefix: quotaStoreKey(workload, r.id, ''),
      matches: matcher(r.methods, r.paths),
      keyOf: keyFn(r.key),
    });
  });
  return out;
}

export function compileRules(allRules: readonly RateLimitRuleSpec[], maxKeys: number, services: Services, used: Set<string>): CompiledRule[] {
  const state = rateLimitState(services);
  checkIds(allRules);
  const rules = allRules.filter((r) => r.scope !== 'global');
  return rules.map((r) => {
    const limit = limitOf(r.id, r.rate as number, r.per, r.burst, r.audit);
    const signature = JSON.stringify([r.id, r.key, limit.perMs, limit.burst, maxKeys]);
    used.add(signature);
    let store = state.stores.get(signature);
    if (!store) {
      store = new BucketStore(maxKeys, limit.burst / limit.perMs, services.now());
      state.stores.set(signature, store);
    }
    const keyOf = keyFn(r.key);
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
