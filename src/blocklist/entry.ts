/**
 * A block list entry: who is blocked (one key), why, by whom, until when.
 * Keys are canonicalised on the way in (IPv6 compressed, IPv4-mapped to
 * IPv4, CIDR to its network address) so a lookup never misses an entry
 * because of how an address was written.
 */
import { CidrError, formatIp, parseCidr, parseIp, type Cidr } from '../http/cidr.ts';

/** ip and cidr match the client IP; the others match the identity (spiffeId also the mTLS peer before authn). */
export const BLOCK_KINDS = ['ip', 'cidr', 'subject', 'spiffeId', 'clientId', 'tokenId'] as const;
export type BlockKind = (typeof BLOCK_KINDS)[number];
export type IdentityBlockKind = Exclude<BlockKind, 'ip' | 'cidr'>;

/** policy: static, from the policy file; detector: the feedback loop; manual: an operator. */
export type BlockSource = 'policy' | 'detector' | 'manual';

export interface BlockEntry {
  readonly kind: BlockKind;
  /** Canonical value: address, network/prefix, or the identity string. */
  readonly value: string;
  readonly reason: string;
  readonly source: BlockSource;
  /** Epoch ms after which the entry no longer applies; null = never. */
  readonly expiresAt: number | null;
  /** Epoch ms when the entry was added. */
  readonly addedAt: number;
  /** Rule id recorded in the decisions it makes. */
  readonly rule: string;
  /** Dry-run: a match is recorded as would_deny, not enforced. */
  readonly audit: boolean;
  /** Parsed network for ip/cidr entries. */
  readonly cidr: Cidr | null;
}

export interface BlockEntryInput {
  readonly kind: BlockKind;
  readonly value: string;
  readonly reason: string;
  /** Default "manual". */
  readonly source?: BlockSource;
  /** Epoch ms; or give ttlMs. Default: never expires. */
  readonly expiresAt?: number | null;
  readonly ttlMs?: number;
  /** Rule id for decisions. Default "<source>:<kind>". */
  readonly rule?: string;
  readonly audit?: boolean;
}

export class BlockEntryError extends Error {}

export function isBlockKind(k: string): k is BlockKind {
  return (BLOCK_KINDS as readonly string[]).includes(k);
}

/** Validates and canonicalises an entry; throws BlockEntryError with what to fix. */
export function makeEntry(input: BlockEntryInput, now: number): BlockEntry {
  const { kind } = input;
  if (!isBlockKind(kind)) throw new BlockEntryError(`unknown block kind "${String(kind)}"; use one of ${BLOCK_KINDS.join(', ')}`);
  if (typeof input.value !== 'string' || input.value.length === 0) throw new BlockEntryError(`a ${kind} entry needs a non-empty value`);
  if (typeof input.reason !== 'string' || input.reason.length === 0) throw new BlockEntryError(`a ${kind} entry needs a reason`);
  let value = input.value;
  let cidr: Cidr | null = null;
  if (kind === 'ip') {
    const ip = parseIp(value);
    if (!ip) throw new BlockEntryError(`ip "${value}" is not an IPv4 or IPv6 address; for a network use cidr`);
    value = formatIp(ip);
    const bits = ip.v === 4 ? 32 : 128;
    cidr = { ip, bits, text: `${value}/${bits}` };
  } else if (kind === 'cidr') {
    try {
      cidr = parseCidr(value);
    } catch (err) {
      if (err instanceof CidrError) throw new BlockEntryError(err.message);
      throw err;
    }
    value = cidr.text;
  } else if (kind === 'spiffeId' && !value.startsWith('spiffe://')) {
    throw new BlockEntryError(`spiffeId "${value}" must start with spiffe://`);
  }
  let expiresAt: number | null = input.expiresAt ?? null;
  if (input.ttlMs !== undefined) {
    if (!(input.ttlMs > 0)) throw new BlockEntryError(`ttlMs must be a positive number of milliseconds, got ${input.ttlMs}`);
    expiresAt = now + input.ttlMs;
  }
  if (expiresAt !== null && !Number.isFinite(expiresAt)) throw new BlockEntryError('expiresAt must be epoch milliseconds');
  const source = input.source ?? 'manual';
  return Object.freeze({
    kind,
    value,
    reason: input.reason.slice(0, 200),
    source,
    expiresAt,
    addedAt: now,
    rule: input.rule ?? `${source}:${kind}`,
    audit: input.audit === true,
    cidr,
  });
}

export function isLive(e: BlockEntry, now: number): boolean {
  return e.expiresAt === null || e.expiresAt > now;
}
