/**
 * Exponential backoff: `firstMs` doubled per attempt (attempt 0 waits `firstMs`), at most
 * `maxMs`. One formula for every retry loop that talks to Kafka.
 */
export function backoffMs(attempt: number, firstMs: number, maxMs: number): number {
  return Math.min(maxMs, firstMs * 2 ** Math.min(attempt, 30));
}
