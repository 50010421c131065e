/**
 * The blast-radius guard: the population's view of failing clients. When failures rise across many
 * clients at once, that is an incident (a policy that denies everyone, an identity-provider
 * outage, an upstream answering errors), not many attackers. The guard holds when
 *
 *   - a large share of the active clients are failing together (guard.failingShare), or
 *   - right after a new policy hash appeared in the decisions (guard.policyChangeSeconds), several
 *     clients are failing (policyChangeMinClients, policyChangeShare) and one reason code is the
 *     last failure of most of them (dominantCodeShare),
 *
 * and lets go by itself once neither has held for guard.recoverSeconds. While it holds, the
 * detector turns automatic blocks of the failure detections into alerts (detector.ts).
 *
 * "Active" = seen within the medium window; "failing" = its last guard.clientMinFailures requests
 * all failed (401, 403, 404, violations; the engine keeps the run per client). Everything runs in
 * event time, like the engine. The view is recounted over the engine's clients at most once per
 * second of event time (a pass over the clients: ~1-2 ms per 100k), so each event costs only the
 * policy hash comparison here.
 *
 * The onset test closes the race at the start of an incident, when fast clients reach a failure
 * detection's threshold before slow ones have made their next request: before a failure detection
 * blocks a client, the clients seen since that client started failing are counted, and if a large
 * share of them are failing too (their last request failed), the guard holds at once.
 */
import type { DetectorConfig } from '../config.ts';
import type { ClientState } from '../engine/client-state.ts';

export type GuardConfig = DetectorConfig['guard'];

/** The population right now, as the guard counted it. */
export interface PopulationView {
  /** Event time of the count, ms. */
  readonly at: number;
  readonly windowSeconds: number;
  readonly active: number;
  readonly failing: number;
  /** failing / active (0 without active clients). */
  readonly share: number;
  /** The reason code that is the last failure of the most failing clients, and how many. */
  readonly topCode: string | null;
  readonly topCodeClients: number;
  /** Clients the engine held at the count (active or not): clients new since then are active too. */
  readonly tracked: number;
  /** Active clients under a block that keep knocking: refused by the block list (or blocked) within KNOCKING_MS. */
  readonly blocked: number;
}

export interface GuardTrip {
  readonly reason: 'failing-share' | 'policy-change';
  /** Event time the guard started holding, ms. */
  readonly since: number;
  readonly view: PopulationView;
  /** The policy hash in force (newest seen) and the one before it, when known. */
  readonly policyHash: string | null;
  readonly previousPolicyHash: string | null;
  /** When the newest policy hash first appeared, event time ms (null: no change seen). */
  readonly policyChangedAt: number | null;
}

export type GuardTransition =
  | { readonly type: 'tripped'; readonly trip: GuardTrip }
  /** failedDuring: keys of the clients seen failing while the guard held (their evidence is the incident's). */
  | { readonly type: 'released'; readonly trip: GuardTrip; readonly view: PopulationView; readonly failedDuring: ReadonlySet<string> };

/** Policy hashes remembered (first-seen times), at most: rollouts are few. */
const MAX_HASHES = 32;
/** Event time between two recounts of the population, ms. */
const RECOUNT_MS = 1000;
/**
 * A blocked client counts as under a block while it was refused (or blocked) this recently, ms:
 * a client wrongly blocked keeps retrying and stays counted; an attacker that gave up drops out
 * within seconds instead of using the share cap up for a whole window.
 */
export const KNOCKING_MS = 10_000;

export class BlastRadiusGuard {
  private readonly cfg: GuardConfig;
  private readonly windowMs: number;
  private holdingTrip: GuardTrip | null = null;
  /** Clients seen failing while the guard holds (bounded by the engine's clients). */
  private failedDuring = new Set<string>();
  /** Last event time the guard's tests held, ms. */
  private lastTrue = 0;
  private lastView: PopulationView | null = null;
  // Policy hashes by first-seen event time.
  private readonly hashes = new Map<string, number>();
  private lastHash: string | null = null;
  private newestHash: string | null = null;
  private previousHash: string | null = null;
  private changedAt: number | null = null;

  constructor(cfg: GuardConfig, windowMs: number) {
    this.cfg = cfg;
    this.windowMs = windowMs;
  }

  /** Per event: the policy hash the decision was made under. A hash never seen before is a change (except the first). */
  notePolicy(hash: string | undefined, t: number): void {
    if (hash === undefined || hash === '' || hash === this.lastHash) return;
    this.lastHash = hash;
    if (this.hashes.has(hash)) return;
    if (this.hashes.size > 0) {
      this.previousHash = this.newestHash;
      this.changedAt = t;
    }
    this.newestHash = hash;
    this.hashes.set(hash, t);
    if (this.hashes.size > MAX_HASHES) this.hashes.delete(this.hashes.keys().next().value as string);
  }

  /** The trip in force, or null. */
  holding(): GuardTrip | null {
    return this.holdingTrip;
  }

  /** The last count of the population (recount() refreshes it). */
  view(): PopulationView | null {
    return this.lastView;
  }

  /** Counts active and failing clients now (event time `now`). */
  count(clients: Iterable<ClientState>, now: number): PopulationView {
    this.lastView = this.countSince(clients, now, now - this.windowMs, this.cfg.clientMinFailures, null);
    return this.lastView;
  }

  /**
   * The population since `since`: clients seen since then (but `exclude`), and those among them
   * whose last `minStreak` requests failed.
   */
  private countSince(clients: Iterable<ClientState>, now: number, since: number, minStreak: number, exclude: ClientState | null): PopulationView {
    let active = 0;
    let failing = 0;
    let tracked = 0;
    let blocked = 0;
    const codes = new Map<string, number>();
    for (const c of clients) {
      tracked++;
      if (c.last < since || c === exclude) continue;
      active++;
      if (c.lastBlocked >= now - KNOCKING_MS) blocked++;
      if (c.failStreak < minStreak) continue;
      failing++;
      if (this.holdingTrip !== null) this.failedDuring.add(c.key);
      if (c.failCode !== null) codes.set(c.failCode, (codes.get(c.failCode) ?? 0) + 1);
    }
    let topCode: string | null = null;
    let topCodeClients = 0;
    for (const [code, n] of codes) {
      if (n > topCodeClients) {
        topCode = code;
        topCodeClients = n;
      }
    }
    return { at: now, windowSeconds: Math.max(0, (now - since) / 1000), active, failing, share: active > 0 ? failing / active : 0, topCode, topCodeClients, tracked, blocked };
  }

  /**
   * Before a failure detection blocks `client`: are the clients seen since it started failing
   * failing too? Holds the guard at once when they are (returns the transition).
   */
  onset(clients: Iterable<ClientState>, now: number, client: ClientState): GuardTransition | null {
    if (!this.cfg.enabled || this.holdingTrip !== null || client.failStreak === 0) return null;
    const v = this.countSince(clients, now, client.failSince, 1, client);
    const reason = this.test(v);
    if (reason === null) return null;
    this.lastTrue = now;
    this.holdingTrip = { reason, since: now, view: v, policyHash: this.newestHash, previousPolicyHash: this.previousHash, policyChangedAt: this.changedAt };
    return { type: 'tripped', trip: this.holdingTrip };
  }

  /** Whether the last count is older than a second of event time (update() would recount). */
  due(now: number): boolean {
    return this.cfg.enabled && (this.lastView === null || now - this.lastView.at >= RECOUNT_MS);
  }

  /**
   * Recounts when due (or `force`), and moves the guard: returns the transition, or null when
   * nothing changed.
   */
  update(clients: Iterable<ClientState>, now: number, force = false): GuardTransition | null {
    if (!this.cfg.enabled) return null;
    if (!force && !this.due(now)) return null;
    const v = this.count(clients, now);
    const reason = this.test(v);
    if (reason !== null) {
      this.lastTrue = now;
      if (this.holdingTrip !== null) return null;
      this.holdingTrip = { reason, since: now, view: v, policyHash: this.newestHash, previousPolicyHash: this.previousHash, policyChangedAt: this.changedAt };
      return { type: 'tripped', trip: this.holdingTrip };
    }
    if (this.holdingTrip !== null && now - this.lastTrue >= this.cfg.recoverSeconds * 1000) {
      const trip = this.holdingTrip;
      const failedDuring = this.failedDuring;
      this.holdingTrip = null;
      this.failedDuring = new Set();
      return { type: 'released', trip, view: v, failedDuring };
    }
    return null;
  }

  /** Which test holds for this view, or null. */
  private test(v: PopulationView): GuardTrip['reason'] | null {
    const g = this.cfg;
    const enough = v.active >= g.minActiveClients;
    // The more specific reason first: it names the policy change and the code.
    const recentChange = this.changedAt !== null && v.at - this.changedAt <= g.policyChangeSeconds * 1000;
    if (recentChange && v.failing >= g.policyChangeMinClients && (!enough || v.share >= g.policyChangeShare) && v.topCodeClients >= g.dominantCodeShare * v.failing) return 'policy-change';
    if (enough && v.failing > 0 && v.share >= g.failingShare) return 'failing-share';
    return null;
  }
}

/** Automatic blocks issued in the last minute, against guard.maxBlocksPerMinute (wall clock). */
export class BlockRateCap {
  private readonly max: number;
  private readonly times: number[] = [];

  constructor(maxPerMinute: number) {
    this.max = maxPerMinute;
  }

  /** True when one more block now would exceed the cap. */
  full(now: number): boolean {
    while (this.times.length > 0 && this.times[0]! <= now - 60_000) this.times.shift();
    return this.times.length >= this.max;
  }

  note(now: number): void {
    this.times.push(now);
  }
}
