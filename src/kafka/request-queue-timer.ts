/**
 * A fix for kafkajs 2.2.4's request queue, applied once when src/kafka/client.ts loads.
 *
 * After every response, kafkajs's RequestQueue.scheduleCheckPendingRequests() arms a timer
 * for `throttledUntil - Date.now()` ms even when nothing is pending and nothing is throttled;
 * `throttledUntil` starts at -1, so the delay is about minus the epoch. Node clamps it to 1 ms
 * and prints a TimeoutNegativeWarning, and since the timer's callback schedules the next one the
 * same way, every open broker connection wakes the process about every millisecond for as long
 * as it is open (measured: ~870 wake-ups per idle second for one admin connection). No kafkajs
 * option avoids that path, and kafkajs is no longer maintained, so the method is replaced here
 * with one that arms a timer only when a request is waiting: at the end of the client-side
 * throttle, or after kafkajs's own 10 ms when the queue is merely full (a response also drains
 * it). With nothing pending the old timer's callback did nothing but re-arm itself.
 */
import { createRequire } from 'node:module';

/** kafkajs's CHECK_PENDING_REQUESTS_INTERVAL (src/network/requestQueue/index.js). */
const CHECK_PENDING_REQUESTS_INTERVAL_MS = 10;

interface RequestQueueState {
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  pending: unknown[];
  checkPendingRequests(): void;
}

function scheduleCheckPendingRequests(this: RequestQueueState): void {
  if (this.throttleCheckTimeoutId || this.pending.length === 0) return;
  const throttledFor = this.throttledUntil - Date.now();
  this.throttleCheckTimeoutId = setTimeout(
    () => {
      this.throttleCheckTimeoutId = null;
      this.checkPendingRequests();
    },
    throttledFor > 0 ? throttledFor : CHECK_PENDING_REQUESTS_INTERVAL_MS,
  );
}

let applied = false;

/** True once the fix is in place (idempotent); false when this kafkajs has no such method to fix. */
export function fixKafkajsRequestQueueTimer(): boolean {
  if (applied) return true;
  const require = createRequire(import.meta.url);
  const RequestQueue = require('kafkajs/src/network/requestQueue/index.js') as { prototype: Record<string, unknown> } | undefined;
  if (!RequestQueue || typeof RequestQueue.prototype['scheduleCheckPendingRequests'] !== 'function') return false;
  RequestQueue.prototype['scheduleCheckPendingRequests'] = scheduleCheckPendingRequests;
  applied = true;
  return true;
}
