/**
 * Everything the engine remembers about one client: its per-second baselines,
 * three sliding windows of counters, a distinct-path sketch, its body-size
 * baseline, its per-route epoch counts (for the population model), and which
 * alerts it already raised. Serialisable (JSON) for the checkpoint topic.
 */
import type { DetectorConfig, WindowName } from '../config.ts';
import { Ewma, SecondSeries } from './baseline.ts';
import { HLL_REGISTERS } from './hll.ts';
import type { ClientKind } from './observation.ts';
import { SlidingWindow } from './window.ts';

/** Counter slots, shared by the windows and the per-second series. */
export const M_REQ = 0;
export const M_FAIL = 1;
export const M_NOT_FOUND = 2;
export const M_VIOLATION = 3;
/** Windows only: bodies that were size outliers. */
export const M_SIZE_OUTLIER = 4;
/** Windows only: authorization denials (403s), kept apart from authentication failures. */
export const M_DENIED = 5;
export const SERIES_WIDTH = 4;
export const WINDOW_WIDTH = 6;
export const METRIC_NAMES = ['requests', 'auth_failures', 'not_found', 'violations', 'size_outliers', 'authz_denials'] as const;

/**
 * Per (client, route) epoch counts: [epoch index, current epoch x4, previous epoch x4],
 * metrics in slot order M_REQ..M_VIOLATION.
 */
export type RouteCounts = Float64Array;
export const RC_SIZE = 1 + 2 * SERIES_WIDTH;

export interface AlertMark {
  /** Event time of the last alert, ms. */
  at: number;
  rank: number;
}

export const STATE_VERSION = 1;

export class ClientState {
  readonly key: string;
  kind: ClientKind;
  ip: string;
  subject: string | null;
  /** SPIFFE ID of the mTLS peer, when the client has one (blocks on it apply before authn). */
  spiffeId: string | null;
  tokenId: string | null;
  /** Source partition of the client's events (checkpoints go to the same partition). */
  partition: number;
  first: number;
  last: number;
  events = 0;
  // Requests may grow a second at a time; failures, 404s and violations are only learned within the
  // client's own spread, so a slow attack does not teach the baseline that failing is normal.
  readonly series = new SecondSeries(SERIES_WIDTH, [1, 0, 0, 0]);
  readonly windows: Record<WindowName, SlidingWindow>;
  /** Two 64-register HyperLogLog sketches: the current half-window and the previous one. */
  readonly hll = new Uint8Array(2 * HLL_REGISTERS);
  /** Offset of the current half-window sketch in `hll` (0 or 64). */
  hllCur = 0;
  /** Absolute index of the current half-window; -1 before the first path. */
  hllEpoch = -1;
  /** Whether the current half-window saw any path (an idle half is not a baseline sample). */
  hllActive = false;
  /** Distinct paths per window: samples taken at each half-window boundary. */
  readonly distinct = new Ewma();
  /** log2(1 + body bytes) of requests with a body. */
  readonly size = new Ewma();
  routes: Map<string, RouteCounts> | null = null;
  alerts: Map<string, AlertMark> | null = null;
  /** Time of the last manual unblock, ms; evidence before it does not count. 0 = never. */
  forgivenAt = 0;
  /** Changed since the last checkpoint. */
  dirty = true;
  /**
   * For the blast-radius guard (not checkpointed: rebuilt by the next events): how many of the
   * client's last requests failed in a row, when that run began (event time, ms), and the reason
   * code of its last failure.
   */
  failStreak = 0;
  failSince = 0;
  failCode: string | null = null;
  /** Last time the client was refused by the block list, or blocked by the detector (event time, ms; 0 = never). */
  lastBlocked = 0;

  constructor(key: string, kind: ClientKind, ip: string, t: number, partition: number, cfg: DetectorConfig) {
    this.key = key;
    this.kind = kind;
    this.ip = ip;
    this.subject = null;
    this.spiffeId = null;
    this.tokenId = null;
    this.partition = partition;
    this.first = t;
    this.last = t;
    const w = cfg.engine.windows;
    this.windows = {
      short: new SlidingWindow(w.short.seconds * 1000, w.short.buckets, WINDOW_WIDTH),
      medium: new SlidingWindow(w.medium.seconds * 1000, w.medium.buckets, WINDOW_WIDTH),
      long: new SlidingWindow(w.long.seconds * 1000, w.long.buckets, WINDOW_WIDTH),
    };
  }

  /** Drops the short-term evidence (windows, sketches, epoch counts, alert marks); keeps the baselines. */
  forgive(at: number): void {
    this.forgivenAt = at;
    this.windows.short.clear();
    this.windows.medium.clear();
    this.windows.long.clear();
    this.hll.fill(0);
    this.hllActive = false;
    if (this.routes) for (const rc of this.routes.values()) rc.fill(0, 1);
    this.alerts = null;
    this.dirty = true;
  }

  toJSON(): SerializedClient {
    return {
      v: STATE_VERSION,
      k: this.key,
      kind: this.kind,
      ip: this.ip,
      sub: this.subject,
      sp: this.spiffeId,
      first: this.first,
      last: this.last,
      ev: this.events,
      se: this.series.toJSON(),
      w: { s: this.windows.short.toJSON(), m: this.windows.medium.toJSON(), l: this.windows.long.toJSON() },
      hll: Buffer.from(this.hll).toString('base64'),
      hc: this.hllCur,
      he: this.hllEpoch,
      ha: this.hllActive,
      di: this.distinct.toJSON(),
      sz: this.size.toJSON(),
      r: this.routes ? [...this.routes].map(([route, rc]) => [route, Array.from(rc)]) : [],
      al: this.alerts ? [...this.alerts].map(([d, m]) => [d, m.at, m.rank]) : [],
      fg: this.forgivenAt,
    };
  }

  static fromJSON(j: SerializedClient, partition: number, cfg: DetectorConfig): ClientState {
    const c = new ClientState(j.k, j.kind, j.ip, j.first, partition, cfg);
    c.subject = j.sub;
    c.spiffeId = j.sp;
    c.last = j.last;
    c.events = j.ev;
    c.series.load(j.se);
    c.windows.short.load(j.w.s);
    c.windows.medium.load(j.w.m);
    c.windows.long.load(j.w.l);
    const h = Buffer.from(j.hll, 'base64');
    if (h.length === c.hll.length) c.hll.set(h);
    c.hllCur = j.hc;
    c.hllEpoch = j.he;
    c.hllActive = j.ha;
    c.distinct.load(j.di);
    c.size.load(j.sz);
    if (j.r.length > 0) {
      c.routes = new Map();
      for (const [route, rc] of j.r) if (rc.length === RC_SIZE) c.routes.set(route, Float64Array.from(rc));
    }
    if (j.al.length > 0) {
      c.alerts = new Map();
      for (const [d, at, rank] of j.al) c.alerts.set(d, { at, rank });
    }
    c.forgivenAt = j.fg;
    c.dirty = false;
    return c;
  }
}

export interface SerializedClient {
  readonly v: number;
  readonly k: string;
  readonly kind: ClientKind;
  readonly ip: string;
  readonly sub: string | null;
  readonly sp: string | null;
  readonly first: number;
  readonly last: number;
  readonly ev: number;
  readonly se: { s: number; c: number[]; m: number[]; v: number[]; n: number };
  readonly w: { s: { h: number; c: number[] }; m: { h: number; c: number[] }; l: { h: number; c: number[] } };
  readonly hll: string;
  readonly hc: number;
  readonly he: number;
  readonly ha: boolean;
  readonly di: number[];
  readonly sz: number[];
  readonly r: [string, number[]][];
  readonly al: [string, number, number][];
  readonly fg: number;
}
