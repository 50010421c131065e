/**
 * The Kafka message key of a decision: the identity subject when the request
 * was authenticated, else the client IP. Kafka partitions by key, so each
 * client's events stay in order on one partition (the detector relies on it).
 * An unauthenticated request is keyed by IP: a client's failed logins and its
 * later authenticated requests may land on different partitions.
 */
import type { DecisionRecord } from '../../record.ts';

export function partitionKey(record: DecisionRecord): string | null {
  const subject = record.identity?.subject;
  if (subject) return subject;
  return record.client.ip || null;
}
