/**
 * prom-client metrics whose per-request updates cost a few nanoseconds.
 *
 * prom-client hashes and validates the label object on every observe/inc, even through a cached
 * `labels()` child (lib/histogram.js observe, lib/counter.js inc): ~0.4 µs per update, ~5 µs for
 * the dozen updates of one request in bench/metrics.ts and ~10 µs in a CPU profile of the sidecar
 * under load, against a budget of ~190 µs per request. Here a label set is
 * resolved once to a series object holding raw numbers (bucket counts in a Float64Array, sum,
 * count; a counter's value), and the caller caches that object. The numbers move into
 * prom-client's own series at scrape time (`collect`, which prom-client calls before it reads a
 * metric), so prom-client still formats the exposition: same names, help, types, labels,
 * buckets, `_bucket`/`_sum`/`_count`, series order.
 *
 *   const h = new HotHistogram({ name, help, labelNames: ['route'], buckets, registers: [registry] });
 *   const s = h.series({ route });       // once per label set; keep it
 *   s.observe(seconds);                  // per request
 *   const c = new HotCounter({ name, help, labelNames: ['route'], registers: [registry] });
 *   c.series({ route }).inc(bytes);
 *   const g = new HotGauge({ name, help, registers: [registry] });   // no labels
 *   g.add(1); g.add(-1);
 *
 * They are prom-client Histogram/Counter/Gauge objects: observe/inc/set/labels/zero/remove/reset
 * keep working on the same series. reset(), remove() and zero() also drop what the series objects
 * hold since the last scrape, as prom-client would have dropped those observations.
 *
 * Sums stay bit-identical to prom-client's: a series keeps its running sum from zero (the same
 * additions in the same order as prom-client's `sum += value`) and the scrape copies it in. Only if
 * something else also observed into the same label set directly is the difference added instead,
 * which may round differently in the last bit.
 *
 * This reads and writes prom-client's per-metric `hashMap` (prom-client 15; not in its typings):
 * it has no public way to add to a histogram's buckets. test/telemetry/hot-metrics.test.ts compares
 * the exposition with plain prom-client metrics fed the same records, so a change there fails it.
 */
import { Counter, Gauge, Histogram, type CounterConfiguration, type GaugeConfiguration, type HistogramConfiguration, type LabelValues } from 'prom-client';

type Labels = Readonly<Record<string, string>>;

/** prom-client's entry for one label set of a histogram (lib/histogram.js createBaseValues). */
interface PromHistogramEntry {
  labels: Labels;
  bucketValues: Record<string, number>;
  sum: number;
  count: number;
}
/** ... of a counter (lib/counter.js setValue). */
interface PromCounterEntry {
  value: number;
  labels: Labels;
}
interface PromInternals<E> {
  hashMap: Record<string, E | undefined>;
}

/** prom-client's key of a label set in `hashMap` (lib/util.js hashObject with the sorted label names). */
function promKey(sortedNames: readonly string[], labels: Readonly<Record<string, unknown>>): string {
  let key = '';
  for (const name of sortedNames) {
    const v = labels[name];
    if (v !== undefined) key += `${name}:${String(v)},`;
  }
  return key;
}

/** The label object prom-client's remove/labels build from their arguments (lib/util.js getLabels). */
function labelsOf(labelNames: readonly string[], args: readonly unknown[]): Record<string, unknown> {
  if (typeof args[0] === 'object' && args[0] !== null) return args[0] as Record<string, unknown>;
  return Object.fromEntries(labelNames.map((n, i) => [n, args[i]]));
}

/**
 * A prom-client total (histogram sum, counter value) that the scrape before set to `flushed`, and
 * that has since grown here to `total`. Untouched since, it takes `total`: exactly prom-client's own
 * running sum. Changed by a direct observe/inc, it gets the difference added instead.
 */
function mergeTotal(current: number, flushed: number, total: number): number {
  return current === flushed ? total : current + (total - flushed);
}

/** One label set of a HotHistogram. Get it from `series()` and keep it. */
export class HistogramSeries {
  readonly labels: Labels;
  readonly key: string;
  /**
   * Observations per bucket since the last scrape, not cumulative (prom-client's bucketValues);
   * the extra last slot is above the last bound, counted only in +Inf (= the count).
   */
  readonly pending: Float64Array;
  pendingCount = 0;
  /** Sum of every observation since the series (re)started, and its value at the last scrape. */
  sum = 0;
  flushedSum = 0;
  readonly #bounds: Float64Array;
  readonly #dirty: HistogramSeries[];

  constructor(labels: Labels, key: string, bounds: Float64Array, dirty: HistogramSeries[]) {
    this.labels = labels;
    this.key = key;
    this.#bounds = bounds;
    this.pending = new Float64Array(bounds.length + 1);
    this.#dirty = dirty;
  }

  observe(value: number): void {
    // prom-client's check and message: a NaN would poison the sum for good.
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const bounds = this.#bounds;
    let i = 0;
    // Linear: at most 15 bounds, and most values land in the first few.
    while (i < bounds.length && value > bounds[i]!) i++;
    this.pending[i]! += 1;
    // Queued on its first observation since the scrape, so new series reach prom-client in the
    // order of their first observation, as they would through observe().
    if (this.pendingCount++ === 0) this.#dirty.push(this);
    this.sum += value;
  }

  /** Forgets everything (reset/remove/zero of the metric). */
  discard(): void {
    this.pending.fill(0);
    this.pendingCount = 0;
    this.sum = 0;
    this.flushedSum = 0;
  }
}

type HotHistogramConfiguration<T extends string> = Omit<HistogramConfiguration<T>, 'collect' | 'enableExemplars' | 'buckets'> & { readonly buckets: readonly number[] };

export class HotHistogram<T extends string = string> extends Histogram<T> {
  readonly #bounds: Float64Array;
  readonly #names: readonly string[];
  readonly #sortedNames: readonly string[];
  readonly #series = new Map<string, HistogramSeries>();
  readonly #dirty: HistogramSeries[] = [];

  constructor(config: HotHistogramConfiguration<T>) {
    super({ ...config, buckets: [...config.buckets] });
    this.#bounds = Float64Array.from(config.buckets);
    this.#names = [...(config.labelNames ?? [])];
    this.#sortedNames = [...this.#names].sort();
  }

  /** The series of one label set (every label name given), created on first use. Not per request: cache it. */
  series(labels: Readonly<Record<T, string>>): HistogramSeries {
    const key = promKey(this.#sortedNames, labels);
    let s = this.#series.get(key);
    if (s === undefined) {
      s = new HistogramSeries({ ...labels }, key, this.#bounds, this.#dirty);
      this.#series.set(key, s);
    }
    return s;
  }

  /** Called by prom-client before it reads the series (get, getForPromString): moves the raw numbers in. */
  collect(): void {
    const self = this as unknown as PromInternals<PromHistogramEntry> & { bucketValues: Readonly<Record<string, number>> };
    const bounds = this.#bounds;
    for (const s of this.#dirty) {
      let e = self.hashMap[s.key];
      if (e === undefined) {
        // As prom-client's createBaseValues: its frozen all-zero bucket template, copied.
        e = { labels: { ...s.labels }, bucketValues: { ...self.bucketValues }, sum: 0, count: 0 };
        self.hashMap[s.key] = e;
      }
      for (let i = 0; i < bounds.length; i++) {
        const n = s.pending[i]!;
        if (n !== 0) e.bucketValues[bounds[i]!] = (e.bucketValues[bounds[i]!] ?? 0) + n;
      }
      e.count += s.pendingCount;
      e.sum = mergeTotal(e.sum, s.flushedSum, s.sum);
      s.flushedSum = s.sum;
      s.pending.fill(0);
      s.pendingCount = 0;
    }
    this.#dirty.length = 0;
  }

  override reset(): void {
    super.reset();
    // prom-client's constructor calls reset() before this class's fields exist.
    if (!(#series in this)) return;
    for (const s of this.#series.values()) s.discard();
    this.#dirty.length = 0;
  }

  override remove(...args: [LabelValues<T>] | string[]): void {
    // apply: `super.remove(...args)` does not type-check against either overload alone.
    (Histogram.prototype.remove as (...a: unknown[]) => void).apply(this, args);
    this.#discard(labelsOf(this.#names, args));
  }

  override zero(labels: LabelValues<T>): void {
    super.zero(labels);
    if (#series in this) this.#discard(labels);
  }

  #discard(labels: Readonly<Record<string, unknown>>): void {
    const s = this.#series.get(promKey(this.#sortedNames, labels));
    if (s === undefined) return;
    s.discard();
    const i = this.#dirty.indexOf(s);
    if (i >= 0) this.#dirty.splice(i, 1);
  }
}

/** One label set of a HotCounter. Get it from `series()` and keep it. */
export class CounterSeries {
  readonly labels: Labels;
  readonly key: string;
  /** Total of every increment since the series (re)started, and its value at the last scrape. */
  value = 0;
  flushed = 0;
  queued = false;
  readonly #dirty: CounterSeries[];

  constructor(labels: Labels, key: string, dirty: CounterSeries[]) {
    this.labels = labels;
    this.key = key;
    this.#dirty = dirty;
  }

  inc(n = 1): void {
    if (!(n >= 0 && n !== Infinity)) throw new TypeError(`Counter increment must be a finite number >= 0: ${n}`);
    this.value += n;
    if (!this.queued) {
      this.queued = true;
      this.#dirty.push(this);
    }
  }

  discard(): void {
    this.value = 0;
    this.flushed = 0;
    this.queued = false;
  }
}

type HotCounterConfiguration<T extends string> = Omit<CounterConfiguration<T>, 'collect' | 'enableExemplars'>;

export class HotCounter<T extends string = string> extends Counter<T> {
  readonly #names: readonly string[];
  readonly #sortedNames: readonly string[];
  readonly #series = new Map<string, CounterSeries>();
  readonly #dirty: CounterSeries[] = [];

  constructor(config: HotCounterConfiguration<T>) {
    super(config);
    this.#names = [...(config.labelNames ?? [])];
    this.#sortedNames = [...this.#names].sort();
  }

  /** The series of one label set (every label name given), created on first use. Not per request: cache it. */
  series(labels: Readonly<Record<T, string>>): CounterSeries {
    const key = promKey(this.#sortedNames, labels);
    let s = this.#series.get(key);
    if (s === undefined) {
      s = new CounterSeries({ ...labels }, key, this.#dirty);
      this.#series.set(key, s);
    }
    return s;
  }

  /** Called by prom-client before it reads the series (get): moves the raw numbers in. */
  collect(): void {
    const self = this as unknown as PromInternals<PromCounterEntry>;
    for (const s of this.#dirty) {
      let e = self.hashMap[s.key];
      if (e === undefined) {
        e = { value: 0, labels: { ...s.labels } };
        self.hashMap[s.key] = e;
      }
      e.value = mergeTotal(e.value, s.flushed, s.value);
      s.flushed = s.value;
      s.queued = false;
    }
    this.#dirty.length = 0;
  }

  override reset(): void {
    super.reset();
    // prom-client's constructor calls reset() before this class's fields exist.
    if (!(#series in this)) return;
    for (const s of this.#series.values()) s.discard();
    this.#dirty.length = 0;
  }

  override remove(...args: [LabelValues<T>] | string[]): void {
    (Counter.prototype.remove as (...a: unknown[]) => void).apply(this, args);
    const s = this.#series.get(promKey(this.#sortedNames, labelsOf(this.#names, args)));
    if (s === undefined) return;
    s.discard();
    const i = this.#dirty.indexOf(s);
    if (i >= 0) this.#dirty.splice(i, 1);
  }
}

type HotGaugeConfiguration = Omit<GaugeConfiguration<never>, 'collect' | 'labelNames'>;

/** An unlabelled gauge moved by `add(delta)` on the request path; the deltas land at scrape time. */
export class HotGauge extends Gauge {
  #pending = 0;

  constructor(config: HotGaugeConfiguration) {
    super(config);
  }

  add(delta: number): void {
    this.#pending += delta;
  }

  /** Called by prom-client before it reads the value (get). */
  collect(): void {
    if (this.#pending === 0) return;
    const d = this.#pending;
    this.#pending = 0;
    this.inc(d);
  }

  override reset(): void {
    super.reset();
    // prom-client's constructor calls reset() before this class's fields exist.
    if (#pending in this) this.#pending = 0;
  }
}
