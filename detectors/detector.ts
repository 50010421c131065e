/**
 * The detector core shared by the Kafka service and the embedded detector:
 * decisions go into the engine; each anomaly goes through the feedback
 * policy and comes out as an alert, and maybe a block, to the outputs
 * (Kafka topics, a webhook, or a sidecar's block-list store directly).
 * Block-list changes come back in (onBlockList), so the policy knows what is
 * in force and a manual unblock wins until there is new evidence.
 *
 * Between the policy and the outputs sit the blast-radius guard and the caps
 * (feedback/guard.ts, config.guard): a block of a failure detection while
 * many clients fail at once, or one beyond the caps on automatic blocks, is
 * published as an alert saying why (suppressed), counted, and not issued.
 */
import type { Logger } from 'pino';
import type { BlockRecord, DecodedBlockMessage } from '../src/blocklist/kafka-record.ts';
import type { DecisionRecord } from '../src/decision/record.ts';
import { uuidv7 } from '../src/util/ids.ts';
import { FAILURE_DETECTIONS, type DetectorConfig } from './config.ts';
import { fmt, type Anomaly } from './engine/anomaly.ts';
import { DetectorEngine } from './engine/engine.ts';
import { BlastRadiusGuard, BlockRateCap, type GuardTransition, type PopulationView } from './feedback/guard.ts';
import { FeedbackPolicy, targetKey, type BlockTarget, type SuppressionReason } from './feedback/policy.ts';
import type { DetectorMetrics } from './metrics.ts';

/** Alerts about the population rather than one client: the guard holding, a cap reached. */
export type GuardAlertId = 'guard.blast-radius' | 'guard.block-cap';
/** The client key of the guard's alerts (not a client: no block-list target can match it). */
export const POPULATION_CLIENT = '(population)';

export interface Alert {
  /** Alert id (UUID v7), also the finding uid in the OCSF event. */
  readonly id: string;
  /** When the detector raised it, epoch ms. */
  readonly time: number;
  /** What was found: a client's anomaly, or (detection guard.*) the guard's view of the population. */
  readonly anomaly: Anomaly | (Omit<Anomaly, 'detection'> & { readonly detection: GuardAlertId });
  /** alert: published only; block: published and the client blocked. */
  readonly action: 'alert' | 'block';
  readonly block: { readonly target: BlockTarget; readonly expiresAt: number; readonly durationSeconds: number } | null;
  /** Why a block the policy asked for was not issued. */
  readonly suppressed: SuppressionReason | null;
}

export interface DetectorOutputs {
  alert(alert: Alert): void;
  block(record: Omit<BlockRecord, 'v'>, alert: Alert): void;
  /** A condition alerted on ended (the blast-radius guard let go), at `at` epoch ms: Alertmanager resolves its alert. */
  ended?(detection: GuardAlertId, at: number): void;
}

export interface DetectorOptions {
  readonly config: DetectorConfig;
  readonly outputs: DetectorOutputs;
  readonly metrics?: DetectorMetrics;
  readonly logger?: Logger;
  /** Wall clock (block expiries, alert times, the blocks-per-minute cap). */
  readonly now?: () => number;
}

const FAILURE_SET: ReadonlySet<string> = new Set(FAILURE_DETECTIONS);
/** One cap alert per this long at most, wall clock ms: the suppressed anomalies are alerted each anyway. */
const CAP_ALERT_EVERY_MS = 60_000;

export class Detector {
  readonly engine: DetectorEngine;
  readonly feedback: FeedbackPolicy;
  readonly guard: BlastRadiusGuard;
  private readonly o: DetectorOptions;
  private readonly now: () => number;
  private readonly guardOn: boolean;
  private readonly rateCap: BlockRateCap;
  private lastCapAlert = -Infinity;
  /** Blocks issued since the guard's last count (view time), for the share cap between counts. */
  private blockedSince = { at: -1, n: 0 };

  constructor(o: DetectorOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
    this.engine = new DetectorEngine(o.config);
    this.feedback = new FeedbackPolicy(o.config, this.now);
    const g = o.config.guard;
    this.guardOn = g.enabled;
    this.guard = new BlastRadiusGuard(g, o.config.engine.windows.medium.seconds * 1000);
    this.rateCap = new BlockRateCap(g.maxBlocksPerMinute);
  }

  /** One decision (partition: the Kafka partition it came from, 0 in-process). */
  observe(record: DecisionRecord, partition = 0): void {
    if (this.guardOn) this.guard.notePolicy(record.policy?.hash, record.time);
    const found = this.engine.observe(record, partition);
    if (this.guardOn && this.guard.due(this.engine.now)) this.moveGuard(this.guard.update(this.engine.clients.values(), this.engine.now), record);
    if (found !== null) for (const a of found) this.handle(a, record);
  }

  private handle(a: Anomaly, record: DecisionRecord): void {
    const m = this.o.metrics;
    m?.anomalies.inc({ detection: a.detection, severity: a.severity });
    const d = this.feedback.decide(a);
    if (d.action === 'none') return;
    const held = d.action === 'block' && this.guardOn ? this.holdBlock(a, targetKey(d.target), record) : null;
    const action = held === null ? d.action : 'alert';
    const suppressed = held ?? d.suppressed;
    if (suppressed !== null) m?.blocksSuppressed.inc({ reason: suppressed });
    const now = this.now();
    const block = action === 'block' ? { target: d.target, expiresAt: now + d.durationMs, durationSeconds: d.durationMs / 1000 } : null;
    const alert: Alert = { id: uuidv7(now), time: now, anomaly: a, action, block, suppressed };
    this.o.outputs.alert(alert);
    this.o.logger?.warn(
      { alert: alert.id, detection: a.detection, severity: a.severity, client: a.client.key, observed: a.observed, threshold: a.threshold, action, suppressed },
      `anomaly: ${a.summary}`,
    );
    if (!block) return;
    const rec: Omit<BlockRecord, 'v'> = {
      kind: block.target.kind,
      value: block.target.value,
      reason: `${a.detection} (${a.severity}): ${a.summary}`.slice(0, 200),
      source: 'detector',
      expiresAt: block.expiresAt,
      addedAt: now,
      rule: `detector:${a.detection}`,
      detection: a.detection,
      severity: a.severity,
      alertId: alert.id,
      evidenceId: a.evidenceId,
    };
    const fresh = !this.feedback.isBlocked(targetKey(block.target));
    this.feedback.noteBlock(targetKey(block.target), block.expiresAt, 'detector');
    this.rateCap.note(now);
    if (fresh) this.noteBlocked(a.client.key);
    this.o.outputs.block(rec, alert);
    m?.blocksIssued.inc({ detection: a.detection });
    m?.eventToBlock.observe(Math.max(0, now - record.time) / 1000);
  }

  /** A client just blocked counts as blocked at once, before the guard's next count sees it. */
  private noteBlocked(key: string): void {
    const c = this.engine.clients.get(key);
    if (c !== undefined) c.lastBlocked = this.engine.now;
    const at = this.guard.view()?.at ?? -1;
    if (this.blockedSince.at !== at) this.blockedSince = { at, n: 0 };
    this.blockedSince.n++;
  }

  /** Active clients and those of them under a block, now (the last count plus what happened since). */
  private blockedShare(): { active: number; blocked: number } {
    const v = this.guard.view() ?? this.guard.count(this.engine.clients.values(), this.engine.now);
    // Clients new since the last count (a burst of new attackers) are active too.
    const active = v.active + Math.max(0, this.engine.clients.size - v.tracked);
    const blocked = v.blocked + (this.blockedSince.at === v.at ? this.blockedSince.n : 0);
    return { active, blocked };
  }

  /** Why an automatic block must not be issued now, or null. */
  private holdBlock(a: Anomaly, target: string, record: DecisionRecord): SuppressionReason | null {
    const g = this.o.config.guard;
    if (FAILURE_SET.has(a.detection)) {
      // Count afresh: the failures that tipped this client may be tipping many others right now.
      if (this.guard.holding() === null) this.moveGuard(this.guard.update(this.engine.clients.values(), this.engine.now, true), record);
      const c = this.engine.clients.get(a.client.key);
      if (this.guard.holding() === null && c !== undefined) this.moveGuard(this.guard.onset(this.engine.clients.values(), this.engine.now, c), record);
      if (this.guard.holding() !== null) return 'guard';
    }
    const now = this.now();
    let cap: SuppressionReason | null = null;
    if (this.rateCap.full(now)) cap = 'block-rate-cap';
    else if (!this.feedback.isBlocked(target)) {
      // (Extending a block in force adds no blocked client: the share cap does not apply.)
      const { active, blocked } = this.blockedShare();
      if (active >= g.minActiveClients && blocked + 1 > g.maxBlockedShare * active) cap = 'blocked-share-cap';
    }
    if (cap !== null && now - this.lastCapAlert >= CAP_ALERT_EVERY_MS) {
      this.lastCapAlert = now;
      this.capAlert(cap, record);
    }
    return cap;
  }

  private moveGuard(t: GuardTransition | null, record: DecisionRecord): void {
    const m = this.o.metrics;
    const v = this.guard.view();
    if (v !== null) m?.failingClients.set(v.share);
    if (t === null) return;
    if (t.type === 'released') {
      m?.guardActive.set(0);
      // The failures clients gathered during the incident are the incident's, not evidence against
      // them: dropped (baselines kept), so a long window still full of them cannot block a client
      // at its next failure. Only what happens from now on counts.
      for (const key of t.failedDuring) this.engine.forgive(key, this.engine.now);
      this.o.logger?.warn({ reason: t.trip.reason, since: t.trip.since, failing: t.view.failing, active: t.view.active, forgiven: t.failedDuring.size }, 'blast-radius guard released: automatic blocks resume');
      this.o.outputs.ended?.('guard.blast-radius', this.now());
      return;
    }
    m?.guardActive.set(1);
    const trip = t.trip;
    const g = this.o.config.guard;
    const p = trip.view;
    const hash = (h: string | null) => (h === null ? 'unknown' : h.slice(0, 16));
    const code = p.topCode === null ? '' : `; ${p.topCodeClients} of them last failed with ${p.topCode}`;
    const change =
      trip.policyChangedAt === null
        ? `policy hash ${hash(trip.policyHash)} (no change seen)`
        : `policy hash ${hash(trip.policyHash)}, new ${fmt((p.at - trip.policyChangedAt) / 1000)} s before (was ${hash(trip.previousPolicyHash)})`;
    const threshold = trip.reason === 'policy-change' ? g.policyChangeShare : g.failingShare;
    const rule =
      trip.reason === 'policy-change'
        ? `policy changed within ${g.policyChangeSeconds} s, at least ${g.policyChangeMinClients} clients and ${fmt(g.policyChangeShare * 100)}% of the active ones failing, one code the last failure of at least ${fmt(g.dominantCodeShare * 100)}% of them`
        : `at least ${fmt(g.failingShare * 100)}% of at least ${g.minActiveClients} active clients failing`;
    this.publishPopulationAlert(
      'guard.blast-radius',
      record,
      p,
      threshold,
      rule,
      `blast-radius guard: ${p.failing} of ${p.active} active clients (${fmt(p.share * 100)}%) are failing in the last ${p.windowSeconds} s${code}; ${change}. Automatic blocks of failure detections are suspended until the population recovers (${g.recoverSeconds} s without the condition).`,
    );
  }

  private capAlert(cap: SuppressionReason, record: DecisionRecord): void {
    const g = this.o.config.guard;
    const v = this.guard.view() ?? this.guard.count(this.engine.clients.values(), this.engine.now);
    const share = this.blockedShare();
    const blocked = share.blocked;
    const active = Math.max(1, share.active);
    const what = cap === 'block-rate-cap' ? `${g.maxBlocksPerMinute} automatic blocks in the last 60 s (guard.maxBlocksPerMinute)` : `${blocked} of ${active} active clients are under a block (${fmt((blocked / active) * 100)}%; guard.maxBlockedShare ${fmt(g.maxBlockedShare * 100)}%)`;
    this.publishPopulationAlert(
      'guard.block-cap',
      record,
      v,
      cap === 'block-rate-cap' ? g.maxBlocksPerMinute : g.maxBlockedShare,
      cap === 'block-rate-cap' ? `at most ${g.maxBlocksPerMinute} automatic blocks per 60 s` : `at most ${fmt(g.maxBlockedShare * 100)}% of the active clients blocked at once`,
      `block cap reached: ${what}. Further anomalies are alerted, not blocked (suppressed: ${cap}), until the cap frees up.`,
      cap === 'block-rate-cap' ? { observed: g.maxBlocksPerMinute, metric: 'automatic_blocks_per_minute', unit: 'blocks' } : { observed: blocked / active, metric: 'blocked_clients_share', unit: 'fraction' },
    );
  }

  private publishPopulationAlert(
    detection: GuardAlertId,
    record: DecisionRecord,
    v: PopulationView,
    threshold: number,
    thresholdRule: string,
    summary: string,
    measured: { observed: number; metric: string; unit: string } = { observed: v.share, metric: 'failing_clients_share', unit: 'fraction' },
  ): void {
    const now = this.now();
    const alert: Alert = {
      id: uuidv7(now),
      time: now,
      action: 'alert',
      block: null,
      suppressed: null,
      anomaly: {
        detection,
        severity: 'high',
        score: threshold > 0 ? measured.observed / threshold : 1,
        metric: measured.metric,
        unit: measured.unit,
        observed: measured.observed,
        threshold,
        thresholdRule,
        baseline: { source: 'population', mean: v.share, stddev: 0, samples: v.active, unit: `failing share of the active clients in the last ${v.windowSeconds} s` },
        window: { seconds: v.windowSeconds, start: v.at - v.windowSeconds * 1000, end: v.at },
        route: null,
        client: { key: POPULATION_CLIENT, kind: 'ip', ip: '', subject: null, spiffeId: null, tokenId: null },
        evidenceId: record.id,
        time: record.time,
        summary,
      },
    };
    this.o.outputs.alert(alert);
    this.o.logger?.warn({ alert: alert.id, detection, active: v.active, failing: v.failing, code: v.topCode }, summary);
  }

  /** A block-list record seen on the topic (or a store change), including our own. */
  onBlockList(m: DecodedBlockMessage): void {
    if (m.type === 'invalid') return;
    if (m.type === 'block') {
      const r = m.record;
      if (r.expiresAt !== null && r.expiresAt <= this.now()) this.feedback.noteUnblock(m.key, 'expiry', r.expiresAt);
      else this.feedback.noteBlock(m.key, r.expiresAt, r.source);
      return;
    }
    const u = m.unblock;
    this.feedback.noteUnblock(m.key, u.source, u.at);
    // The engine's key for a client is the blocked value itself (IP, SPIFFE ID or subject).
    if (u.source === 'manual') this.engine.forgive(u.value, u.at || this.now());
  }
}
