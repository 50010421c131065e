/**
 * The detector core shared by the Kafka service and the embedded detector:
 * decisions go into the engine; each anomaly goes through the feedback
 * policy and comes out as an alert, and maybe a block, to the outputs
 * (Kafka topics, a webhook, or a sidecar's block-list store directly).
 * Block-list changes come back in (onBlockList), so the policy knows what is
 * in force and a manual unblock wins until there is new evidence.
 */
import type { Logger } from 'pino';
import type { BlockRecord, DecodedBlockMessage } from '../src/blocklist/kafka-record.ts';
import type { DecisionRecord } from '../src/decision/record.ts';
import type { DetectorMetrics } from './metrics.ts';
import { uuidv7 } from '../src/util/ids.ts';
import type { DetectorConfig } from './config.ts';
import type { Anomaly } from './engine/anomaly.ts';
import { DetectorEngine } from './engine/engine.ts';
import { FeedbackPolicy, targetKey, type BlockTarget } from './feedback/policy.ts';

export interface Alert {
  /** Alert id (UUID v7), also the finding uid in the OCSF event. */
  readonly id: string;
  /** When the detector raised it, epoch ms. */
  readonly time: number;
  readonly anomaly: Anomaly;
  /** alert: published only; block: published and the client blocked. */
  readonly action: 'alert' | 'block';
  readonly block: { readonly target: BlockTarget; readonly expiresAt: number; readonly durationSeconds: number } | null;
  /** Why a block the policy asked for was not issued. */
  readonly suppressed: 'manual-unblock' | 'already-blocked' | null;
}

export interface DetectorOutputs {
  alert(alert: Alert): void;
  block(record: Omit<BlockRecord, 'v'>, alert: Alert): void;
}

export interface DetectorOptions {
  readonly config: DetectorConfig;
  readonly outputs: DetectorOutputs;
  readonly metrics?: DetectorMetrics;
  readonly logger?: Logger;
  /** Wall clock (block expiries, alert times). */
  readonly now?: () => number;
}

export class Detector {
  readonly engine: DetectorEngine;
  readonly feedback: FeedbackPolicy;
  private readonly o: DetectorOptions;
  private readonly now: () => number;

  constructor(o: DetectorOptions) {
    this.o = o;
    this.now = o.now ?? Date.now;
    this.engine = new DetectorEngine(o.config);
    this.feedback = new FeedbackPolicy(o.config, this.now);
  }

  /** One decision (partition: the Kafka partition it came from, 0 in-process). */
  observe(record: DecisionRecord, partition = 0): void {
    const found = this.engine.observe(record, partition);
    if (found !== null) for (const a of found) this.handle(a, record);
  }

  private handle(a: Anomaly, record: DecisionRecord): void {
    const m = this.o.metrics;
    m?.anomalies.inc({ detection: a.detection, severity: a.severity });
    const d = this.feedback.decide(a);
    if (d.action === 'none') return;
    const now = this.now();
    const block = d.action === 'block' ? { target: d.target, expiresAt: now + d.durationMs, durationSeconds: d.durationMs / 1000 } : null;
    const alert: Alert = { id: uuidv7(now), time: now, anomaly: a, action: d.action, block, suppressed: d.suppressed };
    this.o.outputs.alert(alert);
    this.o.logger?.warn(
      { alert: alert.id, detection: a.detection, severity: a.severity, client: a.client.key, observed: a.observed, threshold: a.threshold, action: d.action, suppressed: d.suppressed },
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
    this.feedback.noteBlock(targetKey(block.target), block.expiresAt, 'detector');
    this.o.outputs.block(rec, alert);
    m?.blocksIssued.inc({ detection: a.detection });
    m?.eventToBlock.observe(Math.max(0, now - record.time) / 1000);
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
