/**
 * The detection engine: one call per decision record, in event time, no I/O.
 * It updates the client's state (baselines, windows, sketches, route epochs),
 * runs the rules that the event can affect, and returns the anomalies that
 * crossed a threshold (de-duplicated per client and detection: a detection
 * repeats only after the cooldown or when its severity rises).
 *
 * The same engine runs inside the `palisade detector` Kafka consumer and
 * in-process in a sidecar (detectors/embedded.ts).
 */
import type { DecisionRecord } from '../../src/decision/record.ts';
import type { DetectionId, DetectorConfig } from '../config.ts';
import { checkAuthFailures } from '../rules/auth-failures.ts';
import { checkForbidden, checkNotFound, checkPaths } from '../rules/enumeration.ts';
import { checkPopulation } from '../rules/population.ts';
import { checkSchema, checkSize } from '../rules/probing.ts';
import type { Explanation, RuleContext } from '../rules/context.ts';
import { checkRate } from '../rules/rate.ts';
import { SEVERITY_RANK, severityOf, type Anomaly } from './anomaly.ts';
import { alphaForHalfLife } from './baseline.ts';
import { ClientState, M_DENIED, M_FAIL, M_NOT_FOUND, M_REQ, M_SIZE_OUTLIER, M_VIOLATION, RC_SIZE, SERIES_WIDTH, type RouteCounts, type SerializedClient } from './client-state.ts';
import { hash32 } from './hash.ts';
import { HLL_REGISTERS, hllAdd, hllEstimate } from './hll.ts';
import { F_ANY_FAILURE, F_AUTH_FAIL, F_BLOCKED, F_DENIED, F_NOT_FOUND, F_VIOLATION, clientKeyOf, clientKindOf, failureCodeOf, flagsOf } from './observation.ts';
import { PopulationModel } from './population.ts';


/** Most routes a single client is tracked on (a client spraying thousands of unknown paths shares one route: "(none)"). */
const MAX_ROUTES_PER_CLIENT = 256;

export interface EngineStats {
  readonly clients: number;
  readonly events: number;
  readonly anomalies: number;
  readonly routes: number;
}

export class DetectorEngine {
  readonly cfg: DetectorConfig;
  readonly clients = new Map<string, ClientState>();
  readonly population: PopulationModel;
  /** Latest event time seen, ms. */
  now = 0;
  /** Per-second EWMA weight (from the half-life). */
  readonly alpha: number;
  readonly distinctAlpha: number;
  readonly sizeAlpha: number;
  readonly warmupMs: number;
  readonly cooldownMs: number;
  readonly epochMs: number;
  readonly distinctHalfMs: number;
  /** What the rules see of the engine (rules/context.ts). */
  private readonly ctx: RuleContext;
  private nextSweep = 0;
  private out: Anomaly[] = [];
  private evicted: { key: string; partition: number }[] = [];
  private events = 0;
  private anomalies = 0;

  constructor(cfg: DetectorConfig) {
    this.cfg = cfg;
    const e = cfg.engine;
    this.alpha = alphaForHalfLife(e.baselineHalfLifeSeconds);
    this.distinctHalfMs = (e.windows[cfg.detections['enumeration.paths'].window].seconds * 1000) / 2;
    this.distinctAlpha = alphaForHalfLife(Math.max(2, (e.baselineHalfLifeSeconds * 1000) / this.distinctHalfMs));
    this.sizeAlpha = alphaForHalfLife(cfg.detections['probing.size'].halfLifeSamples);
    this.warmupMs = e.warmupSeconds * 1000;
    this.cooldownMs = cfg.alerts.cooldownSeconds * 1000;
    this.epochMs = cfg.population.epochSeconds * 1000;
    this.population = new PopulationModel({ ...cfg.population, clampSigma: e.learnClampSigma });
    this.ctx = { detections: cfg.detections, distinctHalfMs: this.distinctHalfMs, epochMs: this.epochMs, population: this.population, report: this.report.bind(this) };
  }

  /**
   * Feeds one decision. `partition` is the Kafka partition it came from (0 in-process).
   * Returns the anomalies it raised, or null (the common case, no allocation).
   */
  observe(r: DecisionRecord, partition = 0): Anomaly[] | null {
    const key = clientKeyOf(r);
    if (!key) return null;
    const t = r.time;
    let c = this.clients.get(key);
    if (c === undefined) {
      c = new ClientState(key, clientKindOf(r), r.client.ip, t, partition, this.cfg);
      this.clients.set(key, c);
    }
    if (t > c.last) c.last = t;
    c.partition = partition;
    c.dirty = true;
    if (r.client.ip) c.ip = r.client.ip;
    const id = r.identity;
    if (id) {
      c.subject = id.subject;
      if (id.spiffeId) c.spiffeId = id.spiffeId;
      if (id.tokenId) c.tokenId = id.tokenId;
    }
    if (t > this.now) {
      this.now = t;
      if (t >= this.nextSweep) {
        this.nextSweep = t + this.cfg.engine.sweepIntervalSeconds * 1000;
        this.sweep(t);
      }
    }
    const flags = flagsOf(r);
    if ((flags & F_BLOCKED) !== 0) {
      // No evidence, but the guard's caps count the blocked clients that keep knocking.
      c.lastBlocked = t;
      return null;
    }
    this.events++;
    c.events++;

    // ---- state ----
    const e = this.cfg.engine;
    const s = c.series;
    s.tick(t, this.alpha, e.learnClampSigma, e.warmupSeconds);
    s.cur[M_REQ]! += 1;
    const fail = (flags & F_AUTH_FAIL) !== 0;
    const nf = (flags & F_NOT_FOUND) !== 0;
    const viol = (flags & F_VIOLATION) !== 0;
    if (fail) s.cur[M_FAIL]! += 1;
    if (nf) s.cur[M_NOT_FOUND]! += 1;
    if (viol) s.cur[M_VIOLATION]! += 1;
    const ws = c.windows;
    const fa = fail ? M_FAIL : -1;
    const na = nf ? M_NOT_FOUND : -1;
    const va = viol ? M_VIOLATION : -1;
    ws.short.addEvent(t, fa, na, va);
    ws.medium.addEvent(t, fa, na, va);
    ws.long.addEvent(t, fa, na, va);
    const denied = (flags & F_DENIED) !== 0;
    if (denied) {
      ws.short.add(t, M_DENIED, 1);
      ws.medium.add(t, M_DENIED, 1);
      ws.long.add(t, M_DENIED, 1);
    }
    // The blast-radius guard's view of this client (feedback/guard.ts reads it across clients).
    if ((flags & F_ANY_FAILURE) !== 0) {
      if (c.failStreak === 0) c.failSince = t;
      c.failStreak++;
      c.failCode = failureCodeOf(r);
    } else {
      c.failStreak = 0;
    }
    const pathChanged = this.trackPath(c, r.request.path, t);
    const sizeOutlier = r.request.bytesIn > 0 && this.trackSize(c, r.request.bytesIn, t);
    const rc = this.trackRoute(c, r.request.route, t, fail, nf, viol);

    // ---- rules the event can affect ----
    const warm = c.events >= e.warmupEvents && t - c.first >= this.warmupMs;
    checkRate(this.ctx, c, r, t, warm);
    if (fail) checkAuthFailures(this.ctx, c, r, t, warm);
    if (nf) checkNotFound(this.ctx, c, r, t, warm);
    if (denied) checkForbidden(this.ctx, c, r, t, warm);
    if (viol) checkSchema(this.ctx, c, r, t, warm);
    if (pathChanged) checkPaths(this.ctx, c, r, t, warm);
    if (sizeOutlier) checkSize(this.ctx, c, r, t, warm);
    if (rc !== null && (warm === false || this.cfg.population.applyToWarmClients)) checkPopulation(this.ctx, c, r, t, rc, fail, nf, viol);

    if (this.out.length === 0) return null;
    const res = this.out;
    this.out = [];
    this.anomalies += res.length;
    return res;
  }

  /**
   * Records an anomaly unless the same detection already alerted for this client within the
   * cooldown at the same or a higher severity. `explain` is only called when it is recorded.
   */
  report(c: ClientState, r: DecisionRecord, detection: DetectionId, observed: number, threshold: number, explain: () => Explanation): void {
    const score = observed / threshold;
    const severity = severityOf(score, this.cfg.severity);
    const rank = SEVERITY_RANK[severity];
    const t = r.time;
    const mark = c.alerts?.get(detection);
    if (mark && t - mark.at < this.cooldownMs && rank <= mark.rank) return;
    (c.alerts ??= new Map()).set(detection, { at: t, rank });
    this.out.push({
      detection,
      severity,
      score,
      observed,
      threshold,
      ...explain(),
      client: { key: c.key, kind: c.kind, ip: c.ip, subject: c.subject, spiffeId: c.spiffeId, tokenId: c.tokenId },
      evidenceId: r.id,
      time: t,
    });
  }

  /** Distinct paths: two half-window HyperLogLogs; a finished half samples the distinct baseline. */
  private trackPath(c: ClientState, path: string, t: number): boolean {
    const he = Math.floor(t / this.distinctHalfMs);
    if (he > c.hllEpoch) {
      if (c.hllEpoch >= 0 && c.hllActive) {
        let x = hllEstimate(c.hll, [0, HLL_REGISTERS]);
        const d = c.distinct;
        if (d.n >= 4) {
          const limit = Math.max(d.mean + this.cfg.engine.learnClampSigma * d.sd, 2 * d.mean, d.mean + 1);
          if (x > limit) x = limit;
        }
        d.add(x, this.distinctAlpha);
      }
      if (he === c.hllEpoch + 1) {
        c.hllCur ^= HLL_REGISTERS;
        c.hll.fill(0, c.hllCur, c.hllCur + HLL_REGISTERS);
      } else {
        c.hll.fill(0);
      }
      c.hllEpoch = he;
      c.hllActive = false;
    }
    c.hllActive = true;
    return hllAdd(c.hll, c.hllCur, hash32(path));
  }

  /** Body size baseline (log2 bytes); returns true when this body is an outlier. */
  private trackSize(c: ClientState, bytes: number, t: number): boolean {
    const cfg = this.cfg.detections['probing.size'];
    const x = Math.log2(1 + bytes);
    const z = c.size;
    if (z.n >= cfg.minSamples && bytes >= cfg.minBytes && x > z.mean + cfg.sigma * Math.max(z.sd, 0.5)) {
      // Outliers are not learned: a run of huge bodies must not become the client's normal.
      c.windows.short.add(t, M_SIZE_OUTLIER, 1);
      c.windows.medium.add(t, M_SIZE_OUTLIER, 1);
      c.windows.long.add(t, M_SIZE_OUTLIER, 1);
      return true;
    }
    z.add(x, this.sizeAlpha);
    return false;
  }

  /** Per (client, route) epoch counts; a finished epoch is one sample of the route's population. */
  private trackRoute(c: ClientState, route: string | null, t: number, fail: boolean, nf: boolean, viol: boolean): RouteCounts | null {
    const routes = (c.routes ??= new Map());
    const rk = this.population.routeKey(route);
    let rc = routes.get(rk);
    if (rc === undefined) {
      if (routes.size >= MAX_ROUTES_PER_CLIENT) return null;
      rc = new Float64Array(RC_SIZE);
      rc[0] = -1;
      routes.set(rk, rc);
    }
    const ep = Math.floor(t / this.epochMs);
    if (ep > rc[0]!) this.rollRoute(rk, rc, ep);
    rc[1 + M_REQ]! += 1;
    if (fail) rc[1 + M_FAIL]! += 1;
    if (nf) rc[1 + M_NOT_FOUND]! += 1;
    if (viol) rc[1 + M_VIOLATION]! += 1;
    return rc;
  }

  private rollRoute(route: string, rc: RouteCounts, ep: number): void {
    const prev = rc[0]!;
    if (prev >= 0 && rc[1 + M_REQ]! > 0) this.population.sample(route, rc, 1);
    const W = SERIES_WIDTH;
    for (let m = 0; m < W; m++) {
      rc[1 + W + m] = ep === prev + 1 ? rc[1 + m]! : 0;
      rc[1 + m] = 0;
    }
    rc[0] = ep;
  }

  /** Route label of a record as the population model keys it. */
  routeKeyOf(route: string | null): string {
    return this.population.routeKey(route);
  }

  /**
   * Housekeeping in event time: folds finished route epochs of idle clients into the
   * population, drops empty route entries, evicts idle clients and, above maxClients,
   * the least recently seen.
   */
  sweep(now: number): void {
    const idleMs = this.cfg.engine.idleEvictSeconds * 1000;
    const ep = Math.floor(now / this.epochMs);
    for (const [key, c] of this.clients) {
      if (now - c.last > idleMs) {
        this.clients.delete(key);
        this.evicted.push({ key, partition: c.partition });
        continue;
      }
      if (c.routes) {
        for (const [route, rc] of c.routes) {
          if (ep > rc[0]!) {
            const stale = ep > rc[0]! + 1;
            this.rollRoute(route, rc, ep);
            if (stale) c.routes.delete(route);
          }
        }
      }
    }
    const max = this.cfg.engine.maxClients;
    if (this.clients.size > max) {
      // Rare: sort once and drop the oldest tenth below the bound, not one per event.
      const byAge = [...this.clients.values()].sort((a, b) => a.last - b.last);
      const drop = this.clients.size - Math.floor(max * 0.9);
      for (let i = 0; i < drop; i++) {
        const c = byAge[i]!;
        this.clients.delete(c.key);
        this.evicted.push({ key: c.key, partition: c.partition });
      }
    }
  }

  /** Clients evicted since the last call (their checkpoints should be deleted). */
  drainEvicted(): { key: string; partition: number }[] {
    const e = this.evicted;
    this.evicted = [];
    return e;
  }

  /**
   * A manual unblock: the client's short-term evidence is dropped (baselines kept), so only
   * events after `at` can flag it again.
   */
  forgive(key: string, at: number): void {
    this.clients.get(key)?.forgive(at);
  }

  /** Clients changed since their last checkpoint (optionally of one partition). */
  *dirtyClients(): Iterable<ClientState> {
    for (const c of this.clients.values()) if (c.dirty) yield c;
  }

  /** Restores a client from a checkpoint (replacing what is in memory). */
  restoreClient(j: SerializedClient, partition: number): void {
    if (j.v !== 1) return;
    this.clients.set(j.k, ClientState.fromJSON(j, partition, this.cfg));
  }

  /** Forgets the clients of partitions this instance no longer owns. */
  dropPartitions(partitions: ReadonlySet<number>): number {
    let n = 0;
    for (const [key, c] of this.clients) {
      if (partitions.has(c.partition)) {
        this.clients.delete(key);
        n++;
      }
    }
    return n;
  }

  stats(): EngineStats {
    return { clients: this.clients.size, events: this.events, anomalies: this.anomalies, routes: this.population.routes.size };
  }
}
