/**
 * A sliding window of counters in event time: `buckets` buckets of
 * `bucketMs`, `width` counters per bucket, running totals kept so reading a
 * window is O(1). Buckets expire one at a time as time advances, so a
 * window always covers between (buckets-1)/buckets and all of its length.
 * Late events (clock skew between sidecars) land in their bucket while it is
 * still inside the window, else in the oldest one.
 */
export class SlidingWindow {
  readonly bucketMs: number;
  readonly buckets: number;
  readonly width: number;
  /** counts[slot * width + metric] */
  readonly counts: Float64Array;
  readonly totals: Float64Array;
  /** Absolute index (time / bucketMs) of the newest bucket; -1 before the first event. */
  head = -1;

  constructor(windowMs: number, buckets: number, width: number) {
    this.bucketMs = windowMs / buckets;
    this.buckets = buckets;
    this.width = width;
    this.counts = new Float64Array(buckets * width);
    this.totals = new Float64Array(width);
  }

  get windowMs(): number {
    return this.bucketMs * this.buckets;
  }

  /** Moves the head to time t, expiring the buckets it passes. */
  advance(t: number): void {
    const idx = Math.floor(t / this.bucketMs);
    if (idx <= this.head) return;
    const w = this.width;
    if (this.head < 0 || idx - this.head >= this.buckets) {
      this.counts.fill(0);
      this.totals.fill(0);
    } else {
      for (let b = this.head + 1; b <= idx; b++) {
        const base = (b % this.buckets) * w;
        for (let m = 0; m < w; m++) {
          const v = this.counts[base + m]!;
          if (v !== 0) {
            this.totals[m]! -= v;
            this.counts[base + m] = 0;
          }
        }
      }
    }
    this.head = idx;
  }

  /** Adds v to metric m at time t (advance(t) first for in-order events). */
  add(t: number, m: number, v: number): void {
    let idx = Math.floor(t / this.bucketMs);
    if (idx > this.head) {
      this.advance(t);
      idx = this.head;
    } else if (idx <= this.head - this.buckets) {
      idx = this.head - this.buckets + 1;
    }
    this.counts[(idx % this.buckets) * this.width + m]! += v;
    this.totals[m]! += v;
  }

  /**
   * Adds one event's counters at time t: 1 to M_REQ-like slot 0 and 1 to each flagged slot.
   * One bucket computation for all of them (the hot path: every event, every window).
   */
  addEvent(t: number, a: number, b: number, c: number): void {
    let idx = Math.floor(t / this.bucketMs);
    if (idx > this.head) {
      this.advance(t);
      idx = this.head;
    } else if (idx <= this.head - this.buckets) {
      idx = this.head - this.buckets + 1;
    }
    const base = (idx % this.buckets) * this.width;
    const counts = this.counts;
    const totals = this.totals;
    counts[base]! += 1;
    totals[0]! += 1;
    if (a >= 0) {
      counts[base + a]! += 1;
      totals[a]! += 1;
    }
    if (b >= 0) {
      counts[base + b]! += 1;
      totals[b]! += 1;
    }
    if (c >= 0) {
      counts[base + c]! += 1;
      totals[c]! += 1;
    }
  }

  total(m: number): number {
    return this.totals[m]!;
  }

  /** Start of the time the window covers now, ms. */
  start(): number {
    return (this.head - this.buckets + 1) * this.bucketMs;
  }

  /** End of the time the window covers now, ms. */
  end(): number {
    return (this.head + 1) * this.bucketMs;
  }

  clear(): void {
    this.counts.fill(0);
    this.totals.fill(0);
  }

  toJSON(): { h: number; c: number[] } {
    return { h: this.head, c: Array.from(this.counts) };
  }

  load(s: { h: number; c: number[] }): void {
    if (s.c.length !== this.counts.length) return; // shape changed by a config change: start empty
    this.head = s.h;
    this.counts.set(s.c);
    this.totals.fill(0);
    for (let i = 0; i < this.counts.length; i++) this.totals[i % this.width]! += this.counts[i]!;
  }
}
