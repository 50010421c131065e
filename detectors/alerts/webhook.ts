/**
 * The optional alert webhook: the same alert as the alerts topic, POSTed as
 * JSON in Alertmanager's webhook format (version 4, so anything that takes
 * Alertmanager notifications can take these) and/or Slack-style {text, blocks}
 * (Slack incoming webhooks, Mattermost, Rocket.Chat). Sent in the background
 * with a timeout and retries; a bounded queue so a dead receiver cannot grow
 * memory (overflow is counted as an error).
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { DetectorConfig, Severity } from '../config.ts';
import { fmt, SEVERITY_RANK } from '../engine/anomaly.ts';
import type { Alert } from '../detector.ts';

/** Alertmanager's "no end time" (Go's zero time). */
const NO_END = '0001-01-01T00:00:00Z';
const MAX_QUEUED = 1000;

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

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

/** One alert as an Alertmanager webhook payload (version 4). */
export function toAlertmanager(a: Alert, receiver = 'palisade-detector'): Record<string, unknown> {
  const labels = alertLabels(a);
  const annotations = {
    summary: a.anomaly.summary,
    description: description(a),
    alert_id: a.id,
    evidence_id: a.anomaly.evidenceId,
    observed: String(a.anomaly.observed),
    threshold: String(a.anomaly.threshold),
    baseline_mean: String(a.anomaly.baseline.mean),
    baseline_stddev: String(a.anomaly.baseline.stddev),
    window_seconds: String(a.anomaly.window.seconds),
  };
  const fingerprint = createHash('sha256').update(JSON.stringify(Object.entries(labels).sort())).digest('hex').slice(0, 16);
  return {
    version: '4',
    groupKey: `{}:{alertname="PalisadeAnomaly", client=${JSON.stringify(labels.client)}, detection=${JSON.stringify(labels.detection)}}`,
    truncatedAlerts: 0,
    status: 'firing',
    receiver,
    groupLabels: { alertname: 'PalisadeAnomaly', detection: labels.detection, client: labels.client },
    commonLabels: labels,
    commonAnnotations: annotations,
    externalURL: '',
    alerts: [
      {
        status: 'firing',
        labels,
        annotations,
        startsAt: iso(a.anomaly.time),
        endsAt: a.block ? iso(a.block.expiresAt) : NO_END,
        generatorURL: '',
        fingerprint,
      },
    ],
  };
}

const EMOJI: Readonly<Record<Severity, string>> = { low: ':information_source:', medium: ':warning:', high: ':rotating_light:', critical: ':rotating_light:' };

/** One alert as a Slack-style message ({text} for any receiver, {blocks} for Slack's layout). */
export function toSlack(a: Alert): Record<string, unknown> {
  const an = a.anomaly;
  const action = a.block ? `*blocked* \`${a.block.target.kind} ${a.block.target.value}\` for ${a.block.durationSeconds} s` : a.suppressed ? `alert only (${a.suppressed})` : 'alert only';
  const text = `${EMOJI[an.severity]} Palisade ${an.severity} ${an.detection}: ${an.summary} — ${action}`;
  return {
    text,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: `Palisade: ${an.detection} (${an.severity})` } },
      { type: 'section', text: { type: 'mrkdwn', text: `${an.summary}\n${action}` } },
      {
        type: 'section',
        fields: [
          { type: 'mrkdwn', text: `*Client*\n\`${an.client.key}\` (${an.client.kind})` },
          { type: 'mrkdwn', text: `*Observed*\n${fmt(an.observed)} ${an.unit} / ${an.window.seconds} s` },
          { type: 'mrkdwn', text: `*Baseline*\n${fmt(an.baseline.mean)} ± ${fmt(an.baseline.stddev)} (${an.baseline.source})` },
          { type: 'mrkdwn', text: `*Threshold*\n${fmt(an.threshold)} (score ${fmt(an.score)})` },
        ],
      },
      { type: 'context', elements: [{ type: 'mrkdwn', text: `alert ${a.id} · evidence ${an.evidenceId} · ${iso(an.time)}` }] },
    ],
  };
}

export interface WebhookSender {
  send(a: Alert): void;
  /** Waits until the queue is empty (tests, shutdown). */
  drain(): Promise<void>;
  stats(): { sent: number; failed: number; queued: number };
}

export function createWebhookSender(cfg: DetectorConfig['alerts']['webhook'], logger: Logger, onResult?: (ok: boolean) => void): WebhookSender | null {
  if (!cfg.url) return null;
  const url = new URL(cfg.url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`alerts.webhook.url must be http or https, got ${url.protocol}`);
  const min = SEVERITY_RANK[cfg.minSeverity];
  const queue: Record<string, unknown>[] = [];
  let sent = 0;
  let failed = 0;
  let running: Promise<void> | null = null;

  async function post(body: Record<string, unknown>): Promise<boolean> {
    for (let attempt = 0; attempt <= cfg.retries; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, 1000 * attempt));
      try {
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(cfg.timeoutMs) });
        await res.arrayBuffer();
        if (res.ok) return true;
        // 4xx other than 429: the receiver will not take it however often we try.
        if (res.status < 500 && res.status !== 429) {
          logger.warn({ status: res.status, host: url.host }, 'alert webhook refused the alert');
          return false;
        }
      } catch (err) {
        if (attempt === cfg.retries) logger.warn({ err: (err as Error).message, host: url.host }, 'alert webhook unreachable');
      }
    }
    return false;
  }

  async function pump(): Promise<void> {
    while (queue.length > 0) {
      const body = queue.shift() as Record<string, unknown>;
      const ok = await post(body);
      if (ok) sent++;
      else failed++;
      onResult?.(ok);
    }
    running = null;
  }

  return {
    send(a) {
      if (SEVERITY_RANK[a.anomaly.severity] < min) return;
      for (const f of cfg.formats) {
        if (queue.length >= MAX_QUEUED) {
          failed++;
          onResult?.(false);
          continue;
        }
        queue.push(f === 'slack' ? toSlack(a) : toAlertmanager(a));
      }
      running ??= pump();
    },
    async drain() {
      while (running) await running;
    },
    stats: () => ({ sent, failed, queued: queue.length }),
  };
}
