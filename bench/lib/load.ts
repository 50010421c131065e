/**
 * The load generator of bench/run.ts: undici over keep-alive mTLS, in this
 * (the orchestrating) process, with the targets in child processes.
 *
 *  - closedLoop: N connections, each sends its next request when the last
 *    one completes (throughput at a fixed concurrency);
 *  - fixedRate: requests started on a fixed schedule whatever the answers
 *    (open loop), latency measured from the scheduled start, so a stall is
 *    counted for every request it delays (no coordinated omission).
 */
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';

export interface Tls {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export interface RequestSpec {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly body?: string;
  /** Headers per request (called for each one: e.g. rotating tokens). */
  readonly headers: (i: number) => Record<string, string>;
}

export interface LoadResult {
  readonly requests: number;
  readonly errors: number;
  /** Non-2xx answers (they count as requests too). */
  readonly non2xx: number;
  readonly seconds: number;
  readonly rps: number;
  /** Latency percentiles, milliseconds. */
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

class Samples {
  #buf = new Float64Array(1 << 16);
  #n = 0;
  add(ms: number) {
    if (this.#n === this.#buf.length) {
      const next = new Float64Array(this.#buf.length * 2);
      next.set(this.#buf);
      this.#buf = next;
    }
    this.#buf[this.#n++] = ms;
  }
  get count() {
    return this.#n;
  }
  sorted(): Float64Array {
    return this.#buf.slice(0, this.#n).sort();
  }
}

function summarize(s: Samples, errors: number, non2xx: number, seconds: number): LoadResult {
  const sorted = s.sorted();
  return {
    requests: s.count,
    errors,
    non2xx,
    seconds,
    rps: s.count / seconds,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    max: sorted.length ? (sorted[sorted.length - 1] as number) : NaN,
  };
}

export function makePool(origin: string, tls: Tls, connections: number): Pool {
  return new Pool(origin, {
    connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    keepAliveMaxTimeout: 60_000,
    connect: { ca: tls.ca, cert: tls.cert, key: tls.key, servername: 'localhost', rejectUnauthorized: true },
  });
}

async function once(pool: Pool, spec: RequestSpec, i: number): Promise<number> {
  const res = await pool.request({ method: spec.method, path: spec.path, headers: spec.headers(i), ...(spec.body !== undefined ? { body: spec.body } : {}) });
  await res.body.dump();
  return res.statusCode;
}

export async function closedLoop(pool: Pool, spec: RequestSpec, connections: number, seconds: number): Promise<LoadResult> {
  const s = new Samples();
  let errors = 0;
  let non2xx = 0;
  let i = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  const worker = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        const status = await once(pool, spec, i++);
        if (status < 200 || status > 299) non2xx++;
        s.add(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  return summarize(s, errors, non2xx, (performance.now() - start) / 1000);
}

export async function fixedRate(pool: Pool, spec: RequestSpec, rps: number, seconds: number): Promise<LoadResult> {
  const s = new Samples();
  let errors = 0;
  let non2xx = 0;
  const interval = 1000 / rps;
  const total = Math.round(rps * seconds);
  const start = performance.now() + 5;
  const inflight: Promise<void>[] = [];
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (sent < total && start + sent * interval <= now) {
        const scheduled = start + sent * interval;
        const p = once(pool, spec, sent).then(
          (status) => {
            if (status < 200 || status > 299) non2xx++;
            s.add(performance.now() - scheduled);
          },
          () => {
            errors++;
          },
        );
        inflight.push(p);
        sent++;
      }
      if (sent < total) setTimeout(tick, Math.max(0, start + sent * interval - performance.now()));
      else resolve();
    };
    setTimeout(tick, 5);
  });
  await Promise.all(inflight);
  return summarize(s, errors, non2xx, seconds);
}
