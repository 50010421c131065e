/**
 * palisade_quota_keys{state}: the keys this sidecar holds as over quota
 * ("over": refused until their window ends) or near it ("near": spending this
 * sidecar's share), read from the quota store at each scrape (no work per
 * request); palisade_quota_rules: the global rules of the policy in force
 * (the quota-aggregator alert fires only where quotas are in use). Refusals are counted with the other 429s in
 * palisade_rate_limited_total{code="QUOTA_EXCEEDED"}.
 */
import { Gauge, type Registry } from 'prom-client';

/** What the gauge reads (quota-store.ts QuotaStore). */
export interface QuotaSource {
  count(now: number): { readonly over: number; readonly near: number };
}

export interface QuotaMetrics {
  /** Counts the global rules of a newly loaded policy (palisade_quota_rules). */
  countPolicyQuotas(document: { readonly spec: { readonly rateLimits?: { readonly rules?: readonly { readonly scope?: string }[] } } }): void;
  /** Reads this store at each scrape (the sidecar's quota store). */
  trackQuotas(store: QuotaSource, now?: () => number): void;
}

export function createQuotaMetrics(r: Registry): QuotaMetrics {
  let source: { store: QuotaSource; now: () => number } | null = null;
  new Gauge({
    name: 'palisade_quota_keys',
    help: 'Keys of fleet-wide quotas (rate-limit rules with scope: global) this sidecar holds, by state: over (refused until the window ends) or near (spending its share of what is left).',
    labelNames: ['state'] as const,
    registers: [r],
    collect() {
      const c = source ? source.store.count(source.now()) : { over: 0, near: 0 };
      this.set({ state: 'over' }, c.over);
      this.set({ state: 'near' }, c.near);
    },
  });
  const rules = new Gauge({ name: 'palisade_quota_rules', help: 'Fleet-wide quota rules (rate-limit rules with scope: global) in the policy in force: with none, a lost quota aggregator changes nothing.', registers: [r] });
  return {
    countPolicyQuotas(document) {
      rules.set((document.spec.rateLimits?.rules ?? []).filter((x) => x.scope === 'global').length);
    },
    trackQuotas(store, now = Date.now) {
      source = { store, now };
    },
  };
}
