/**
 * One run at a time of an async task: a call while a run is in flight joins that run instead of
 * starting another. Checkpoint writers use it, so a timer tick, an early checkpoint and a
 * shutdown's last checkpoint never write the same state twice at once (nor commit offsets out of
 * order).
 */
export function singleFlight(task: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | null = null;
  return async () => {
    if (running) return running;
    running = task();
    try {
      await running;
    } finally {
      running = null;
    }
  };
}
