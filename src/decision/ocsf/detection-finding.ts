/**
 * Detector anomaly -> OCSF 1.8.0 Detection Finding (class 2004), the event on
 * the alerts topic. The anomaly explains itself in OCSF terms:
 * anomaly_analyses[0] holds the analysis target (the client, and the route
 * for population detections), the baseline (mean, spread and sample count of
 * the client's own history or the population's) and the anomaly (the observed
 * value over the window, with the threshold rule); finding_info names the
 * detection as the analytic and links the decision events that crossed the
 * threshold (related_events, by their metadata.uid).
 *
 * The input type has the shape of the detector's Anomaly
 * (detectors/engine/anomaly.ts), so the detector passes its anomalies as
 * they are. unmapped.palisade keeps the anomaly's own numbers for machine
 * consumers (`palisade alerts tail`, the webhook); anomalyFromDetectionFinding
 * reads them back.
 */
import { uuidv7 } from '../../util/ids.ts';
import { isIpAddress } from './convert.ts';
import { ANALYTIC_TYPE, CATEGORY, CLASS, FINDING_ACTIVITY, FINDING_STATUS, OBSERVABLE, OCSF_VERSION, SEVERITY, TIMESPAN_MILLISECONDS, type SeverityId } from './enums.ts';
import { DECISIONS_LOG_NAME } from './http-activity.ts';
import { productOf } from './product.ts';
import type { OcsfBaseEvent, OcsfNetworkEndpoint, OcsfObservable, OcsfTimestamp, OcsfUser } from './types.ts';

export const ALERTS_LOG_NAME = 'palisade.alerts';

export type AnomalySeverity = 'low' | 'medium' | 'high' | 'critical';

/** What a detection found about one client. Field for field the detector's Anomaly, plus optional ids. */
export interface AnomalyInput {
  /** Detection id, e.g. "rate.burst", "auth.failures", "population.requests". */
  readonly detection: string;
  readonly severity: AnomalySeverity;
  /** observed / threshold (>= 1 when the detection fires). */
  readonly score: number;
  /** What was measured, e.g. "requests per second". */
  readonly metric: string;
  readonly unit: string;
  readonly observed: number;
  readonly threshold: number;
  /** How the threshold was formed, e.g. "max(floor 30, 4 × mean 2.1, mean + 6σ 14.2)". */
  readonly thresholdRule: string;
  readonly baseline: {
    /** client: the client's own history; population: all clients on the route; none: an absolute floor only. */
    readonly source: 'client' | 'population' | 'none';
    readonly mean: number;
    readonly stddev: number;
    readonly samples: number;
    readonly unit: string;
  };
  /** The window the observed value covers; start/end epoch ms. */
  readonly window: { readonly seconds: number; readonly start: number; readonly end: number };
  /** Route template for population detections, else null. */
  readonly route: string | null;
  readonly client: {
    /** The client key (identity subject, else IP): the Kafka partition key of its decisions. */
    readonly key: string;
    readonly kind: 'identity' | 'ip';
    readonly ip: string;
    readonly subject: string | null;
    readonly spiffeId: string | null;
    readonly tokenId: string | null;
  };
  /** metadata.uid of the decision event that crossed the threshold. */
  readonly evidenceId: string;
  /** Every decision event behind the finding (metadata.uid), oldest first; evidenceId is added when missing. */
  readonly evidenceIds?: readonly string[];
  /** Detection time (the evidence's event time), epoch ms. */
  readonly time: number;
  /** One sentence for humans. */
  readonly summary: string;
  /** Finding id; default a fresh UUID v7. Re-publishing the same finding must reuse it. */
  readonly id?: string;
  /**
   * What the feedback policy did about it. suppressed: why a block the policy asked for was not
   * issued (the blast-radius guard, a cap, a manual unblock, a block already in force).
   */
  readonly response?: { readonly action: 'alert' | 'block'; readonly until?: number | null; readonly suppressed?: string | null };
}

export interface OcsfObservation {
  readonly value: string;
  readonly count?: number;
  readonly timespan?: { readonly duration: number; readonly start_time: OcsfTimestamp; readonly end_time: OcsfTimestamp; readonly type_id: number; readonly type: string };
}

export interface OcsfBaselineOrAnomaly {
  readonly observation_parameter: string;
  readonly observation_type: string;
  readonly observed_pattern: string;
  readonly observations: readonly OcsfObservation[];
}

export interface OcsfAnomalyAnalysis {
  readonly analysis_targets: readonly { readonly name: string; readonly type: string }[];
  readonly baselines: readonly OcsfBaselineOrAnomaly[];
  readonly anomalies: readonly OcsfBaselineOrAnomaly[];
}

export interface OcsfFindingInfo {
  readonly uid: string;
  readonly title: string;
  readonly desc: string;
  readonly types: readonly string[];
  readonly created_time: OcsfTimestamp;
  readonly first_seen_time: OcsfTimestamp;
  readonly last_seen_time: OcsfTimestamp;
  readonly analytic: { readonly uid: string; readonly name: string; readonly type_id: number; readonly type: string; readonly category: string };
  readonly data_sources: readonly string[];
  readonly related_events: readonly { readonly uid: string }[];
  readonly related_events_count: number;
}

export interface OcsfEvidence {
  readonly uid: string;
  readonly name: string;
  readonly src_endpoint?: OcsfNetworkEndpoint;
  readonly user?: OcsfUser;
  readonly data?: { readonly client_key: string };
}

export interface PalisadeAnomalyExtra {
  readonly detection: string;
  readonly severity: AnomalySeverity;
  readonly score: number;
  readonly metric: string;
  readonly unit: string;
  readonly observed: number;
  readonly threshold: number;
  readonly threshold_rule: string;
  readonly baseline: AnomalyInput['baseline'];
  readonly window: AnomalyInput['window'];
  readonly route: string | null;
  readonly client: { readonly key: string; readonly kind: 'identity' | 'ip'; readonly ip: string; readonly subject: string | null; readonly spiffe_id: string | null; readonly token_id: string | null };
  readonly evidence_ids: readonly string[];
  readonly response?: { readonly action: 'alert' | 'block'; readonly until: number | null; readonly suppressed?: string };
}

export interface OcsfDetectionFinding extends OcsfBaseEvent {
  readonly class_uid: 2004;
  readonly category_uid: 2;
  readonly status_id: number;
  readonly status: string;
  readonly is_alert: true;
  readonly start_time: OcsfTimestamp;
  readonly end_time: OcsfTimestamp;
  readonly finding_info: OcsfFindingInfo;
  readonly anomaly_analyses: readonly OcsfAnomalyAnalysis[];
  readonly evidences: readonly OcsfEvidence[];
  readonly unmapped: { readonly palisade: PalisadeAnomalyExtra };
}

const SEVERITY_ID: Readonly<Record<AnomalySeverity, SeverityId>> = { low: 2, medium: 3, high: 4, critical: 5 };

/** Numbers in patterns and observation values: plain, at most 6 significant digits. */
function num(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  return Number.isInteger(n) ? String(n) : String(Number(n.toPrecision(6)));
}

export function toOcsfDetectionFinding(a: AnomalyInput): OcsfDetectionFinding {
  const id = a.id ?? uuidv7(a.time);
  const severityId = SEVERITY_ID[a.severity];
  const evidenceIds = a.evidenceIds && a.evidenceIds.length > 0 ? [...new Set([...a.evidenceIds, a.evidenceId])] : [a.evidenceId];
  const analytic = a.baseline.source === 'none' ? ANALYTIC_TYPE.rule : ANALYTIC_TYPE.statistical;
  const span = { duration: Math.round(a.window.seconds * 1000), start_time: a.window.start, end_time: a.window.end, type_id: TIMESPAN_MILLISECONDS.id, type: TIMESPAN_MILLISECONDS.caption };
  const who = a.client.subject ?? a.client.key;
  const targets: { name: string; type: string }[] = [{ name: a.client.key, type: a.client.kind === 'identity' ? 'client identity' : 'client IP address' }];
  if (a.route !== null) targets.push({ name: a.route, type: 'route' });

  const src: OcsfNetworkEndpoint | undefined = isIpAddress(a.client.ip) ? { ip: a.client.ip } : undefined;
  const user: OcsfUser | undefined = a.client.subject !== null ? { uid: a.client.subject, name: a.client.subject } : undefined;
  // OCSF wants one of src_endpoint, user, data, ... in an evidence: a client known only by an odd key still has it.
  const evidence: OcsfEvidence = { uid: a.evidenceId, name: 'decision', ...(src ? { src_endpoint: src } : {}), ...(user ? { user } : {}), ...(!src && !user ? { data: { client_key: a.client.key } } : {}) };

  const observables: OcsfObservable[] = [];
  if (src?.ip) observables.push({ name: 'evidences.src_endpoint.ip', type_id: OBSERVABLE.ip.id, type: OBSERVABLE.ip.caption, value: src.ip });
  if (user?.name) observables.push({ name: 'evidences.user.name', type_id: OBSERVABLE.userName.id, type: OBSERVABLE.userName.caption, value: user.name });

  return {
    class_uid: 2004,
    class_name: CLASS.detectionFinding.caption,
    category_uid: 2,
    category_name: CATEGORY.findings.caption,
    activity_id: FINDING_ACTIVITY.create.id,
    activity_name: FINDING_ACTIVITY.create.caption,
    type_uid: CLASS.detectionFinding.uid * 100 + FINDING_ACTIVITY.create.id,
    type_name: `${CLASS.detectionFinding.caption}: ${FINDING_ACTIVITY.create.caption}`,
    severity_id: severityId,
    severity: SEVERITY[severityId],
    time: a.time,
    start_time: a.window.start,
    end_time: a.window.end,
    timezone_offset: 0,
    status_id: FINDING_STATUS.new.id,
    status: FINDING_STATUS.new.caption,
    is_alert: true,
    message: a.summary,
    metadata: {
      version: OCSF_VERSION,
      product: productOf('detector'),
      uid: id,
      correlation_uid: a.client.key,
      log_name: ALERTS_LOG_NAME,
      event_code: a.detection,
      profiles: [],
    },
    finding_info: {
      uid: id,
      title: `${a.detection}: ${a.metric} ${num(a.observed)} ${a.unit} > ${num(a.threshold)} for ${who}`,
      desc: a.summary,
      types: [a.detection],
      created_time: a.time,
      first_seen_time: a.window.start,
      last_seen_time: a.window.end,
      analytic: { uid: a.detection, name: a.detection, type_id: analytic.id, type: analytic.caption, category: a.detection.split('.')[0] as string },
      data_sources: [DECISIONS_LOG_NAME],
      related_events: evidenceIds.map((uid) => ({ uid })),
      related_events_count: evidenceIds.length,
    },
    anomaly_analyses: [
      {
        analysis_targets: targets,
        baselines: [
          {
            observation_parameter: a.metric,
            observation_type: `${a.baseline.source} baseline`,
            observed_pattern: a.baseline.source === 'none' ? 'no baseline (absolute floor)' : `mean ${num(a.baseline.mean)} ${a.baseline.unit}, stddev ${num(a.baseline.stddev)}, ${num(a.baseline.samples)} samples`,
            observations: [{ value: num(a.baseline.mean), count: Math.round(a.baseline.samples) }],
          },
        ],
        anomalies: [
          {
            observation_parameter: a.metric,
            observation_type: 'threshold exceeded',
            observed_pattern: `${num(a.observed)} ${a.unit} over ${num(a.window.seconds)} s > threshold ${num(a.threshold)} = ${a.thresholdRule} (score ${num(a.score)})`,
            observations: [{ value: num(a.observed), timespan: span }],
          },
        ],
      },
    ],
    evidences: [evidence],
    observables,
    unmapped: {
      palisade: {
        detection: a.detection,
        severity: a.severity,
        score: a.score,
        metric: a.metric,
        unit: a.unit,
        observed: a.observed,
        threshold: a.threshold,
        threshold_rule: a.thresholdRule,
        baseline: a.baseline,
        window: a.window,
        route: a.route,
        client: { key: a.client.key, kind: a.client.kind, ip: a.client.ip, subject: a.client.subject, spiffe_id: a.client.spiffeId, token_id: a.client.tokenId },
        evidence_ids: evidenceIds,
        ...(a.response ? { response: { action: a.response.action, until: a.response.until ?? null, ...(a.response.suppressed ? { suppressed: a.response.suppressed } : {}) } } : {}),
      },
    },
  };
}

/** True for a Palisade Detection Finding (class 2004 with unmapped.palisade). */
export function isDetectionFinding(event: unknown): event is OcsfDetectionFinding {
  if (event === null || typeof event !== 'object') return false;
  const e = event as Record<string, unknown>;
  const u = e['unmapped'] as Record<string, unknown> | undefined;
  return e['class_uid'] === CLASS.detectionFinding.uid && typeof u === 'object' && u !== null && typeof u['palisade'] === 'object';
}

/** The anomaly a finding was made from (for `palisade alerts tail` and the webhook). */
export function anomalyFromDetectionFinding(event: unknown): AnomalyInput {
  if (!isDetectionFinding(event)) throw new Error(`not a Palisade Detection Finding: expected class_uid ${CLASS.detectionFinding.uid} with unmapped.palisade`);
  const p = event.unmapped.palisade;
  const primary = event.evidences[0]?.uid ?? p.evidence_ids[p.evidence_ids.length - 1] ?? '';
  return {
    id: event.metadata.uid,
    detection: p.detection,
    severity: p.severity,
    score: p.score,
    metric: p.metric,
    unit: p.unit,
    observed: p.observed,
    threshold: p.threshold,
    thresholdRule: p.threshold_rule,
    baseline: p.baseline,
    window: p.window,
    route: p.route,
    client: { key: p.client.key, kind: p.client.kind, ip: p.client.ip, subject: p.client.subject, spiffeId: p.client.spiffe_id, tokenId: p.client.token_id },
    evidenceId: primary,
    ...(p.evidence_ids.length > 1 ? { evidenceIds: p.evidence_ids } : {}),
    time: event.time,
    summary: event.message ?? '',
    ...(p.response ? { response: p.response } : {}),
  };
}
