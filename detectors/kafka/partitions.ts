/**
 * Which decisions partitions this instance owns, which of them have their state restored, and the
 * next offset to commit on each (set after a batch, committed by the checkpoint that covers it).
 */
export class OwnedPartitions {
  readonly owned = new Set<number>();
  readonly restored = new Set<number>();
  /** Next offset to commit per partition (one past the last processed event). */
  readonly next = new Map<number, bigint>();

  /** Takes a new assignment; returns the partitions that were taken away. */
  assign(partitions: readonly number[]): Set<number> {
    const incoming = new Set(partitions);
    const revoked = new Set([...this.owned].filter((p) => !incoming.has(p)));
    for (const p of revoked) {
      this.restored.delete(p);
      this.next.delete(p);
    }
    this.owned.clear();
    for (const p of incoming) this.owned.add(p);
    return revoked;
  }

  /** Every owned partition has its state restored. */
  allRestored(): boolean {
    return [...this.owned].every((p) => this.restored.has(p));
  }

  sorted(): number[] {
    return [...this.owned].sort((a, b) => a - b);
  }
}
