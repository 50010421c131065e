/**
 * Exponentially weighted baselines. A client's history is summarised by the
 * EWMA mean and variance of its per-second counts (requests, failures, 404s,
 * violations), seconds without events included as zeros. The first samples
 * use a cumulative average (alpha = 1/n) so a baseline is meaningful after the
 * warm-up instead of starting at zero; afterwards alpha comes from the
 * half-life. Values far above the baseline are learned only up to a clamp, so
 * an attack does not become the new normal.
 */

/** alpha of an EWMA whose weights halve every `halfLife` samples. */
export function alphaForHalfLife(halfLife: number): number {
  return 1 - 2 ** (-1 / halfLife);
}

/** EWMA of one value stream (a sample at a time). */
export class Ewma {
  mean = 0;
  variance = 0;
  n = 0;

  /** Adds x; `alpha` is the steady-state weight, the cumulative average is used while n < 1/alpha. */
  add(x: number, alpha: number): void {
    const a = Math.max(alpha, 1 / (this.n + 1));
    const d = x - this.mean;
    this.mean += a * d;
    this.variance = (1 - a) * (this.variance + a * d * d);
    this.n++;
  }

  get sd(): number {
    return Math.sqrt(this.variance);
  }

  toJSON(): [number, number, number] {
    return [this.mean, this.variance, this.n];
  }

  load(s: readonly number[]): void {
    this.mean = s[0] ?? 0;
    this.variance = s[1] ?? 0;
    this.n = s[2] ?? 0;
  }
}

/**
 * Per-second counts of `width` metrics, and their EWMA mean and variance.
 * Call `tick(t)` before `add` for each event; the finished second (and any
 * idle seconds since) is folded in when a new second starts.
 */
export class SecondSeries {
  readonly width: number;
  /** Absolute second being counted; -1 before the first event. */
  sec = -1;
  readonly cur: Float64Array;
  readonly mean: Float64Array;
  readonly variance: Float64Array;
  /** Seconds folded so far (the baseline's sample count). */
  n = 0;
  /** Per metric: how far above its mean a second may always be learned (1 lets a request rate grow; 0 keeps a failure-free client's failure baseline at zero). */
  private readonly slack: readonly number[];

  constructor(width: number, slack: readonly number[] = []) {
    this.width = width;
    this.slack = Array.from({ length: width }, (_, m) => slack[m] ?? 1);
    this.cur = new Float64Array(width);
    this.mean = new Float64Array(width);
    this.variance = new Float64Array(width);
  }

  /** Moves to the second of t, folding the finished ones. `clampSigma` <= 0 disables the clamp. */
  tick(t: number, alpha: number, clampSigma: number, clampAfter: number): void {
    const s = Math.floor(t / 1000);
    if (s <= this.sec) return;
    if (this.sec >= 0) {
      this.fold(alpha, clampSigma, clampAfter);
      this.foldZeros(s - this.sec - 1, alpha);
    }
    this.sec = s;
  }

  add(m: number, v: number): void {
    this.cur[m]! += v;
  }

  sd(m: number): number {
    return Math.sqrt(this.variance[m]!);
  }

  private fold(alpha: number, clampSigma: number, clampAfter: number): void {
    const a = Math.max(alpha, 1 / (this.n + 1));
    const clamp = clampSigma > 0 && this.n >= clampAfter;
    for (let m = 0; m < this.width; m++) {
      let x = this.cur[m]!;
      const mean = this.mean[m]!;
      if (clamp) {
        const limit = Math.max(mean + clampSigma * Math.sqrt(this.variance[m]!), 2 * mean, mean + (this.slack[m] as number));
        if (x > limit) x = limit;
      }
      const d = x - mean;
      this.mean[m] = mean + a * d;
      this.variance[m] = (1 - a) * (this.variance[m]! + a * d * d);
      this.cur[m] = 0;
    }
    this.n++;
  }

  /** Folds g idle seconds (zeros). Closed form once alpha is constant: m' = b^g m, v' = b^g (v + m^2 (1 - b^g)). */
  private foldZeros(g: number, alpha: number): void {
    if (g <= 0) return;
    // Cumulative-average phase: one step at a time (bounded by 1/alpha steps over a client's life).
    const cumulative = Math.min(g, Math.max(0, Math.ceil(1 / alpha) - this.n));
    for (let i = 0; i < cumulative; i++) {
      const a = Math.max(alpha, 1 / (this.n + 1));
      for (let m = 0; m < this.width; m++) {
        const mean = this.mean[m]!;
        this.mean[m] = mean - a * mean;
        this.variance[m] = (1 - a) * (this.variance[m]! + a * mean * mean);
      }
      this.n++;
    }
    const rest = g - cumulative;
    if (rest <= 0) return;
    const bg = (1 - alpha) ** rest;
    for (let m = 0; m < this.width; m++) {
      const mean = this.mean[m]!;
      this.variance[m] = bg * (this.variance[m]! + mean * mean * (1 - bg));
      this.mean[m] = bg * mean;
    }
    this.n += rest;
  }

  toJSON(): { s: number; c: number[]; m: number[]; v: number[]; n: number } {
    return { s: this.sec, c: Array.from(this.cur), m: Array.from(this.mean), v: Array.from(this.variance), n: this.n };
  }

  load(j: { s: number; c: number[]; m: number[]; v: number[]; n: number }): void {
    if (j.m.length !== this.width) return;
    this.sec = j.s;
    this.cur.set(j.c);
    this.mean.set(j.m);
    this.variance.set(j.v);
    this.n = j.n;
  }
}
