/**
 * What an anomaly does: nothing, an alert, or an alert and a block for a
 * duration, by detection and severity (config.feedback). It also keeps the
 * detector's view of the block list (fed from the topic or the store), so it
 * does not re-issue a block that is already in force, and so a manual unblock
 * wins: after one, only evidence newer than the unblock can block the client
 * again (the engine also drops the client's short-term evidence then).
 */
import type { BlockKind } from '../../src/blocklist/entry.ts';
import type { DetectorConfig } from '../config.ts';
import type { Anomaly } from '../engine/anomaly.ts';

export interface BlockTarget {
  readonly kind: BlockKind;
  readonly value: string;
}

/**
 * Why a block the feedback policy asked for was not issued (the anomaly is alerted instead): the
 * blast-radius guard holds, a cap on automatic blocks is reached (guard.maxBlocksPerMinute,
 * guard.maxBlockedShare), a manual unblock wins, or a block is already in force.
 */
export const SUPPRESSION_REASONS = ['guard', 'block-rate-cap', 'blocked-share-cap', 'manual-unblock', 'already-blocked'] as const;
export type SuppressionReason = (typeof SUPPRESSION_REASONS)[number];

export interface FeedbackDecision {
  readonly action: 'none' | 'alert' | 'block';
  readonly target: BlockTarget;
  /** Block duration, ms (block only). */
  readonly durationMs: number;
  /** Why a block the policy asked for was not issued (the anomaly is still alerted). */
  readonly suppressed: SuppressionReason | null;
}

/**
 * What to block for a client: its mTLS SPIFFE ID when that is its key (checked before
 * authn, so even its failing requests are refused), else its identity subject, else its IP.
 */
export function blockTargetOf(client: Anomaly['client']): BlockTarget {
  if (client.kind === 'ip') return { kind: 'ip', value: client.ip };
  if (client.spiffeId !== null && client.spiffeId === client.key) return { kind: 'spiffeId', value: client.key };
  return { kind: 'subject', value: client.key };
}

export function targetKey(t: BlockTarget): string {
  return `${t.kind}:${t.value}`;
}

interface Known {
  /** Epoch ms; null = never expires. */
  readonly expiresAt: number | null;
  readonly source: string;
}

export class FeedbackPolicy {
  private readonly cfg: DetectorConfig;
  private readonly now: () => number;
  /** Live blocks by target key, as last seen on the block list. */
  private readonly blocks = new Map<string, Known>();
  /** Manual unblocks by target key: epoch ms of the unblock. */
  private readonly unblocked = new Map<string, number>();

  constructor(cfg: DetectorConfig, now: () => number = Date.now) {
    this.cfg = cfg;
    this.now = now;
  }

  decide(a: Anomaly): FeedbackDecision {
    const target = blockTargetOf(a.client);
    const act = this.cfg.feedback.detections[a.detection]?.[a.severity] ?? this.cfg.feedback[a.severity];
    if (act.action !== 'block') return { action: act.action, target, durationMs: 0, suppressed: null };
    const durationMs = (act.durationSeconds ?? 900) * 1000;
    const key = targetKey(target);
    const unblockedAt = this.unblocked.get(key);
    if (unblockedAt !== undefined && a.time <= unblockedAt) return { action: 'alert', target, durationMs, suppressed: 'manual-unblock' };
    const known = this.blocks.get(key);
    const now = this.now();
    if (known && (known.expiresAt === null || known.expiresAt > now)) {
      // Only extend: a block in force until at least as long (or a manual one) stands.
      if (known.expiresAt === null || known.source === 'manual' || known.expiresAt >= now + durationMs) return { action: 'alert', target, durationMs, suppressed: 'already-blocked' };
    }
    return { action: 'block', target, durationMs, suppressed: null };
  }

  /** A block is in force (seen on the topic, or just issued). */
  noteBlock(key: string, expiresAt: number | null, source: string): void {
    this.blocks.set(key, { expiresAt, source });
    // A new block after a manual unblock ends the unblock's precedence.
    if (source !== 'manual') return;
    this.unblocked.delete(key);
  }

  /** A block ended: by tombstone (manual/detector/expiry) or expiry. */
  noteUnblock(key: string, source: string, at: number): void {
    this.blocks.delete(key);
    if (source === 'manual') this.unblocked.set(key, at);
  }

  /** Blocks whose expiry has passed (target keys); they are forgotten here. */
  takeExpired(now: number): string[] {
    const out: string[] = [];
    for (const [k, b] of this.blocks) {
      if (b.expiresAt !== null && b.expiresAt <= now) {
        out.push(k);
        this.blocks.delete(k);
      }
    }
    return out;
  }

  /** Whether a block on this target key is in force now. */
  isBlocked(key: string): boolean {
    const b = this.blocks.get(key);
    return b !== undefined && (b.expiresAt === null || b.expiresAt > this.now());
  }

  /** Live blocks the policy knows of (target key -> expiry). */
  activeBlocks(): Map<string, number | null> {
    const now = this.now();
    const out = new Map<string, number | null>();
    for (const [k, b] of this.blocks) {
      if (b.expiresAt === null || b.expiresAt > now) out.set(k, b.expiresAt);
    }
    return out;
  }
}
