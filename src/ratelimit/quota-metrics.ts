/**
 * palisade_quota_keys{state}: the keys this sidecar holds as over quota
 * ("over": refused until their window ends) or near it ("near": spending this
 * sidecar's share), read from the quota store at each scrape (no work per
 * request). Refusals are counted with the other 429s in
 * palisade_rate_limited_total{code="QUOTA_EXCEEDED"}.
 */
import { Gauge, type Registry } from 'prom-client';
import type { QuotaStore } from './quota-store.ts';

export function trackQuotas(r: Registry, store: QuotaStore, now: () => number = Date.now): void {
  new Gauge({
    name: 'palisade_quota_keys',
    help: 'Keys of fleet-wide quotas (rate-limit rules with scope: global) this sidecar holds, by state: over (refused until the window ends) or near (spending its share of what is left).',
    labelNames: ['state'] as const,
    registers: [r],
    collect() {
      const c = store.count(now());
      this.set({ state: 'over' }, c.over);
      this.set({ state: 'near' }, c.near);
    },
  });
}
