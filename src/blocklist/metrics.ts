/**
 * The block list's size as a Prometheus gauge, palisade_blocklist_entries{kind, source}: run-time
 * entries (detector, manual) follow the store's change events (O(1) per change, nothing per
 * scrape); the policy's own entries are recounted when a policy loads. Hits are counted from
 * BLOCKED decisions by the sidecar's request metrics (src/sidecar/record-metrics.ts).
 */
import { Gauge, type Registry } from 'prom-client';
import type { PolicyDocument } from '../policy/document.ts';
import { policyBlocklist } from './policy-blocklist.ts';

/** What trackBlocklist needs of the block-list store (store.ts). */
export interface BlocklistSource {
  list(): readonly { readonly kind: string; readonly source: string }[];
  onChange(listener: (change: { readonly type: 'added' | 'removed' | 'expired'; readonly entry: { readonly kind: string; readonly source: string }; readonly replaced?: { readonly kind: string; readonly source: string } }) => void): () => void;
}

/** The kinds of a policy block-list entry (spec.blocklist.entries[]: exactly one of these keys). */
const POLICY_BLOCK_KINDS = ['ip', 'cidr', 'subject', 'spiffeId', 'clientId', 'tokenId'] as const;

export interface BlocklistMetrics {
  readonly blocklistEntries: Gauge<'kind' | 'source'>;
  /** Keeps the gauge current with a store's run-time entries. Returns the unsubscribe function. */
  trackBlocklist(store: BlocklistSource): () => void;
  /** Recounts the entries of a newly loaded policy (source "policy"). */
  countPolicyBlocks(document: PolicyDocument): void;
}

export function createBlocklistMetrics(r: Registry): BlocklistMetrics {
  const blocklistEntries = new Gauge({ name: 'palisade_blocklist_entries', help: 'Entries on the block list, by kind (ip, cidr, subject, spiffeId, clientId, tokenId) and source (policy, detector, manual).', labelNames: ['kind', 'source'] as const, registers: [r] });
  const counts = new Map<string, number>();
  const bump = (kind: string, source: string, d: number) => {
    const k = `${kind}\u0000${source}`;
    const n = (counts.get(k) ?? 0) + d;
    counts.set(k, n);
    blocklistEntries.set({ kind, source }, n);
  };
  return {
    blocklistEntries,
    trackBlocklist(store) {
      for (const e of store.list()) bump(e.kind, e.source, 1);
      return store.onChange((c) => {
        if (c.type === 'added') {
          if (c.replaced) bump(c.replaced.kind, c.replaced.source, -1);
          bump(c.entry.kind, c.entry.source, 1);
        } else {
          bump(c.entry.kind, c.entry.source, -1);
        }
      });
    },
    countPolicyBlocks(document) {
      // The compiled form: a loaded policy keeps no entry objects (policy-blocklist.ts).
      const { byKind } = policyBlocklist(document, Date.now());
      for (const kind of POLICY_BLOCK_KINDS) blocklistEntries.set({ kind, source: 'policy' }, byKind.get(kind) ?? 0);
    },
  };
}
