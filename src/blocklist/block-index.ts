/**
 * The lookup structure behind the block list: a hash map per identity kind
 * (O(1) exact lookups) and a per-prefix-length map for addresses and
 * networks (one probe per prefix length in use). Expired entries never
 * match; the store removes them for good.
 */
import { PrefixMap, type ParsedIp } from '../http/cidr.ts';
import { isLive, type BlockEntry, type IdentityBlockKind } from './entry.ts';

/** Of two matches, an enforced one wins over a dry-run one. */
export function stronger(a: BlockEntry | undefined, b: BlockEntry | undefined): BlockEntry | undefined {
  if (a && !a.audit) return a;
  if (b && !b.audit) return b;
  return a ?? b;
}

export class BlockIndex {
  readonly #ids: Record<IdentityBlockKind, Map<string, BlockEntry>> = {
    subject: new Map(),
    spiffeId: new Map(),
    clientId: new Map(),
    tokenId: new Map(),
  };
  readonly #nets = new PrefixMap<BlockEntry>();

  get size(): number {
    return this.#nets.size + this.#ids.subject.size + this.#ids.spiffeId.size + this.#ids.clientId.size + this.#ids.tokenId.size;
  }

  /** Adds or replaces the entry for its key; returns the one it replaced. */
  set(e: BlockEntry): BlockEntry | undefined {
    if (e.cidr) {
      const prev = this.#nets.getExact(e.cidr);
      this.#nets.set(e.cidr, e);
      return prev;
    }
    const m = this.#ids[e.kind as IdentityBlockKind];
    const prev = m.get(e.value);
    m.set(e.value, e);
    return prev;
  }

  /** The entry stored under exactly this key (canonical value). */
  get(e: Pick<BlockEntry, 'kind' | 'value' | 'cidr'>): BlockEntry | undefined {
    if (e.cidr) return this.#nets.getExact(e.cidr);
    return this.#ids[e.kind as IdentityBlockKind].get(e.value);
  }

  /** Removes `e` if it is still the entry under its key. */
  delete(e: BlockEntry): boolean {
    if (this.get(e) !== e) return false;
    if (e.cidr) return this.#nets.delete(e.cidr);
    return this.#ids[e.kind as IdentityBlockKind].delete(e.value);
  }

  matchIp(ip: ParsedIp, now: number): BlockEntry | undefined {
    if (this.#nets.size === 0) return undefined;
    const any = this.#nets.lookup(ip, (e) => isLive(e, now));
    if (!any || !any.audit) return any;
    return this.#nets.lookup(ip, (e) => !e.audit && isLive(e, now)) ?? any;
  }

  matchId(kind: IdentityBlockKind, value: string, now: number): BlockEntry | undefined {
    const m = this.#ids[kind];
    if (m.size === 0) return undefined;
    const e = m.get(value);
    return e && isLive(e, now) ? e : undefined;
  }

  hasIdentityEntries(): boolean {
    return this.#ids.subject.size + this.#ids.spiffeId.size + this.#ids.clientId.size + this.#ids.tokenId.size > 0;
  }

  hasNetEntries(): boolean {
    return this.#nets.size > 0;
  }
}
