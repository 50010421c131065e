/**
 * Alerts pushed to Alertmanager's API, where responders route, group, silence
 * and page: POST <url>/api/v2/alerts with labels, annotations, startsAt,
 * endsAt and generatorURL, to every configured Alertmanager (an HA cluster
 * de-duplicates what each replica receives, as it does for Prometheus).
 *
 * Alertmanager forgets an alert at its endsAt (or resolve_timeout after the
 * last push when it has none), and a restarted replica has nothing, so the
 * alerts still active here are pushed again every resendIntervalSeconds. An
 * alert with a block is active until the block ends: endsAt is the block's
 * expiry, and when the block is lifted earlier (a manual unblock, an undo)
 * the alert is pushed once more with endsAt = the lift time, which resolves
 * it. An alert that blocked nothing is active for alertOnlySeconds. The
 * blast-radius guard's alert is active while the guard holds: its endsAt
 * moves forward at each re-send (four re-send intervals ahead, so a detector
 * that dies leaves it to resolve by itself) until the guard lets go.
 *
 * Sent in the background with a timeout and retries, one bounded queue per
 * Alertmanager, so a dead one cannot grow memory or hold up another.
 */
import type { Logger } from 'pino';
import type { BlockRecord } from '../../src/blocklist/kafka-record.ts';
import type { AlertmanagerConfig, Severity } from '../config.ts';
import type { Alert, GuardAlertId } from '../detector.ts';
import { fmt, SEVERITY_RANK } from '../engine/anomaly.ts';
import { blockTargetOf, targetKey } from '../feedback/policy.ts';

/** One alert as Alertmanager's API takes it (PostableAlert). */
export interface PostableAlert {
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly startsAt: string;
  readonly endsAt: string;
  readonly generatorURL?: string;
}

/** Batches waiting for one Alertmanager, at most (a batch is one POST). */
const MAX_QUEUED = 1000;
/** Alerts in one POST, at most (the periodic re-send of many active alerts). */
const BATCH = 500;

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** The labels that identify an alert in Alertmanager (what routes, groups and silences match). */
export function alertLabels(a: Alert): Record<string, string> {
  const an = a.anomaly;
  return {
    alertname: 'PalisadeAnomaly',
    detection: an.detection,
    severity: an.severity,
    action: a.action,
    client: an.client.key,
    client_kind: an.client.kind,
    ...(an.route ? { route: an.route } : {}),
  };
}

function description(a: Alert): string {
  const an = a.anomaly;
  const b = an.baseline;
  return [
    `${an.metric} observed ${fmt(an.observed)} ${an.unit} over ${an.window.seconds} s (${iso(an.window.start)} .. ${iso(an.window.end)})`,
    `baseline (${b.source}): ${fmt(b.mean)} ± ${fmt(b.stddev)} ${b.unit}, ${fmt(b.samples)} samples`,
    `threshold ${fmt(an.threshold)}: ${an.thresholdRule}; score ${fmt(an.score)}`,
    a.block ? `blocked ${a.block.target.kind} ${a.block.target.value} for ${a.block.durationSeconds} s` : a.suppressed ? `block not issued: ${a.suppressed}` : 'alert only',
  ].join('\n');
}

/** What responders read: the summary, the evidence and the numbers behind the decision. */
export function alertAnnotations(a: Alert): Record<string, string> {
  const an = a.anomaly;
  return {
    summary: an.summary,
    description: description(a),
    alert_id: a.id,
    evidence_id: an.evidenceId,
    observed: String(an.observed),
    threshold: String(an.threshold),
    baseline_mean: String(an.baseline.mean),
    baseline_stddev: String(an.baseline.stddev),
    window_seconds: String(an.window.seconds),
    ...(a.block ? { blocked: `${a.block.target.kind} ${a.block.target.value}`, blocked_until: iso(a.block.expiresAt) } : {}),
    ...(a.suppressed ? { block_not_issued: a.suppressed } : {}),
  };
}

/** The generatorURL template with {alert_id}, {client} and {detection} filled in (URL-encoded). */
export function generatorUrlOf(template: string, a: Alert): string {
  return template
    .replaceAll('{alert_id}', encodeURIComponent(a.id))
    .replaceAll('{client}', encodeURIComponent(a.anomaly.client.key))
    .replaceAll('{detection}', encodeURIComponent(a.anomaly.detection));
}

interface Tracked {
  readonly labels: Record<string, string>;
  annotations: Record<string, string>;
  readonly startsAt: number;
  endsAt: number;
  generatorURL: string;
  /** Block-list key of the client (kind:value): lifting its block resolves the alert. */
  readonly target: string;
  /** Last time an anomaly fired it, epoch ms: a lift older than that does not resolve it. */
  firedAt: number;
  /** Active until resolved (the guard's alert): endsAt is pushed forward at each re-send. */
  readonly held: boolean;
  /** Rebuilt from a block record (an earlier run raised it): resolved on a lift, not re-sent. */
  readonly adopted: boolean;
}

/** Alerts about a condition that lasts until the detector says it ended (outputs.ended). */
const HELD: ReadonlySet<string> = new Set<GuardAlertId>(['guard.blast-radius']);

function postable(t: Tracked): PostableAlert {
  return { labels: t.labels, annotations: t.annotations, startsAt: iso(t.startsAt), endsAt: iso(t.endsAt), ...(t.generatorURL ? { generatorURL: t.generatorURL } : {}) };
}

export interface AlertmanagerStats {
  /** POSTs accepted / failed (after retries), over every Alertmanager. */
  readonly sent: number;
  readonly failed: number;
  /** Batches waiting, over every Alertmanager. */
  readonly queued: number;
  /** Alerts active here (pushed again until they end). */
  readonly active: number;
}

export interface AlertmanagerPusher {
  /** A new alert: pushed now, then again while active. */
  fire(a: Alert): void;
  /** A block on this target (kind:value) ended at `at` (lifted or expired): its alerts resolve. */
  resolveTarget(target: string, at: number): void;
  /** A condition alerted on ended at `at` (the guard let go): the alerts of that detection resolve. */
  resolveDetection(detection: string, at: number): void;
  /**
   * A detector block in force seen on the block-list topic. One this run raised is known already;
   * one an earlier run raised (the detector restarted) is tracked from the record, so that lifting
   * it still resolves its alert.
   */
  adopt(record: BlockRecord): void;
  /** Pushes every active alert again now (the periodic re-send does this). */
  resend(): void;
  /** Waits until every queue is empty (tests, shutdown). */
  drain(): Promise<void>;
  stats(): AlertmanagerStats;
  /** Stops the re-send and waits for the queues; the alerts stay active in Alertmanager until their endsAt. */
  close(): Promise<void>;
}

export interface AlertmanagerOptions {
  readonly logger: Logger;
  /** Wall clock, epoch ms. */
  readonly now?: () => number;
  /** Called per POST (after retries): ok or not. */
  readonly onResult?: (ok: boolean) => void;
}

interface Target {
  readonly url: URL;
  readonly host: string;
  readonly headers: Record<string, string>;
  readonly queue: PostableAlert[][];
  running: Promise<void> | null;
}

function targetOf(base: string): Target {
  const u = new URL(base);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`alerts.alertmanager.urls: ${u.protocol} is not http or https`);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  // Credentials in the URL (an Alertmanager behind basic auth) go in the header: fetch refuses them
  // in the URL, and they must not appear in a log line.
  if (u.username || u.password) {
    headers['authorization'] = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
    u.username = '';
    u.password = '';
  }
  const path = u.pathname.replace(/\/+$/, '');
  const url = new URL(`${path}/api/v2/alerts`, u);
  return { url, host: u.host, headers, queue: [], running: null };
}

export function createAlertmanagerPusher(cfg: AlertmanagerConfig, o: AlertmanagerOptions): AlertmanagerPusher | null {
  if (cfg.urls.length === 0) return null;
  const now = o.now ?? Date.now;
  const log = o.logger;
  const targets = cfg.urls.map(targetOf);
  const min = SEVERITY_RANK[cfg.minSeverity];
  /** Active alerts by their label set (Alertmanager's identity of an alert). */
  const active = new Map<string, Tracked>();
  let sent = 0;
  let failed = 0;
  let pending: PostableAlert[] = [];
  let flushScheduled = false;
  let closed = false;

  async function post(t: Target, body: PostableAlert[]): Promise<boolean> {
    for (let attempt = 0; attempt <= cfg.retries; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, 1000 * attempt));
      try {
        const res = await fetch(t.url, { method: 'POST', headers: t.headers, body: JSON.stringify(body), signal: AbortSignal.timeout(cfg.timeoutMs) });
        const text = await res.text();
        if (res.ok) return true;
        // 4xx other than 429: Alertmanager refuses these alerts however often we try.
        if (res.status < 500 && res.status !== 429) {
          log.warn({ status: res.status, host: t.host, answer: text.slice(0, 300) }, 'Alertmanager refused the alerts');
          return false;
        }
      } catch (err) {
        if (attempt === cfg.retries) log.warn({ err: (err as Error).message, host: t.host }, 'Alertmanager unreachable');
      }
    }
    if (cfg.retries > 0) log.warn({ host: t.host, alerts: body.length }, 'Alertmanager did not take the alerts after retries');
    return false;
  }

  async function pump(t: Target): Promise<void> {
    while (t.queue.length > 0) {
      const body = t.queue.shift() as PostableAlert[];
      const ok = await post(t, body);
      if (ok) sent++;
      else failed++;
      o.onResult?.(ok);
    }
    t.running = null;
  }

  function enqueue(batch: PostableAlert[]): void {
    if (batch.length === 0) return;
    for (const t of targets) {
      if (t.queue.length >= MAX_QUEUED) {
        failed++;
        o.onResult?.(false);
        continue;
      }
      t.queue.push(batch);
      t.running ??= pump(t);
    }
  }

  /** Alerts raised in the same tick (a batch of decisions) go out in one POST. */
  function push(a: PostableAlert): void {
    pending.push(a);
    if (flushScheduled) return;
    flushScheduled = true;
    setImmediate(() => {
      flushScheduled = false;
      const out = pending;
      pending = [];
      for (let i = 0; i < out.length; i += BATCH) enqueue(out.slice(i, i + BATCH));
    });
  }

  const heldFor = 4 * cfg.resendIntervalSeconds * 1000;

  /** Resolves the matching alerts fired no later than `at`: pushed once more with endsAt = at, then forgotten. */
  function resolveWhere(match: (a: Tracked) => boolean, at: number): void {
    for (const [k, a] of active) {
      if (!match(a) || a.firedAt > at) continue;
      active.delete(k);
      // endsAt no later than now resolves it; not before it started (Alertmanager refuses that).
      a.endsAt = Math.max(a.startsAt, Math.min(at, now()));
      push(postable(a));
    }
  }

  function resend(): void {
    const t = now();
    const batch: PostableAlert[] = [];
    for (const [k, a] of active) {
      if (a.held) a.endsAt = Math.max(a.endsAt, t + heldFor);
      // Past its end Alertmanager resolved it by itself.
      if (a.endsAt <= t) {
        active.delete(k);
        continue;
      }
      // Alertmanager has the full alert from the run that raised it, until its endsAt.
      if (a.adopted) continue;
      batch.push(postable(a));
      if (batch.length === BATCH) enqueue(batch.splice(0));
    }
    enqueue(batch);
  }

  async function drain(): Promise<void> {
    // The pending batch is flushed on the next tick; then every queue runs dry.
    while (flushScheduled || targets.some((t) => t.running)) {
      if (flushScheduled) await new Promise((r) => setImmediate(r));
      await Promise.all(targets.map((t) => t.running));
    }
  }

  const timer = setInterval(resend, cfg.resendIntervalSeconds * 1000);
  timer.unref();

  return {
    fire(a) {
      if (closed || SEVERITY_RANK[a.anomaly.severity] < min) return;
      const labels = alertLabels(a);
      const key = JSON.stringify(labels);
      const held = HELD.has(a.anomaly.detection);
      const endsAt = a.block ? a.block.expiresAt : held ? now() + heldFor : a.time + cfg.alertOnlySeconds * 1000;
      const target = a.block ? targetKey(a.block.target) : targetKey(blockTargetOf(a.anomaly.client));
      const prev = active.get(key);
      const gen = cfg.generatorUrl ? generatorUrlOf(cfg.generatorUrl, a) : '';
      let t: Tracked;
      if (prev && prev.endsAt > a.time) {
        // The same alert again (a longer block, a repeat after the cooldown): one alert in
        // Alertmanager, the latest evidence, ending at the later end.
        prev.annotations = alertAnnotations(a);
        prev.endsAt = Math.max(prev.endsAt, endsAt);
        prev.generatorURL = gen;
        prev.firedAt = a.time;
        t = prev;
      } else {
        t = { labels, annotations: alertAnnotations(a), startsAt: a.anomaly.time, endsAt, generatorURL: gen, target, firedAt: a.time, held, adopted: false };
        active.set(key, t);
      }
      push(postable(t));
    },
    adopt(r) {
      // Only what this labels rebuild exactly: a population detection's alert also has a route label.
      if (closed || r.source !== 'detector' || !r.detection || !r.severity || r.detection.startsWith('population.') || r.expiresAt === null || r.expiresAt <= now()) return;
      if (!(r.severity in SEVERITY_RANK) || SEVERITY_RANK[r.severity as Severity] < min) return;
      const labels = { alertname: 'PalisadeAnomaly', detection: r.detection, severity: r.severity, action: 'block', client: r.value, client_kind: r.kind === 'ip' || r.kind === 'cidr' ? 'ip' : 'identity' };
      const key = JSON.stringify(labels);
      if (active.has(key)) return;
      const annotations = { summary: r.reason, ...(r.alertId ? { alert_id: r.alertId } : {}), ...(r.evidenceId ? { evidence_id: r.evidenceId } : {}), blocked: `${r.kind} ${r.value}`, blocked_until: iso(r.expiresAt) };
      active.set(key, { labels, annotations, startsAt: r.addedAt, endsAt: r.expiresAt, generatorURL: '', target: `${r.kind}:${r.value}`, firedAt: r.addedAt, held: false, adopted: true });
    },
    resolveTarget: (target, at) => resolveWhere((a) => a.target === target, at),
    resolveDetection: (detection, at) => resolveWhere((a) => a.labels['detection'] === detection, at),
    resend,
    drain,
    stats: () => ({ sent, failed, queued: targets.reduce((n, t) => n + t.queue.length, 0), active: active.size }),
    async close() {
      closed = true;
      clearInterval(timer);
      await drain();
    },
  };
}
