/**
 * The optional alert webhook: the same alert as the alerts topic, POSTed as a
 * Slack-style message {text, blocks} (Slack incoming webhooks, Mattermost,
 * Rocket.Chat). Sent in the background with a timeout and retries; a bounded
 * queue so a dead receiver cannot grow memory (overflow is counted as an
 * error). Alertmanager is not a webhook: it has its own API client
 * (alertmanager.ts), because what Alertmanager accepts (POST /api/v2/alerts)
 * is not the notification it sends to its receivers.
 */
import type { Logger } from 'pino';
import type { DetectorConfig, Severity } from '../config.ts';
import { fmt, SEVERITY_RANK } from '../engine/anomaly.ts';
import type { Alert } from '../detector.ts';

const MAX_QUEUED = 1000;

function iso(ms: number): string {
  return new Date(ms).toISOString();
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
        // One format today (slack); the list leaves room for more bodies per alert.
        if (f === 'slack') queue.push(toSlack(a));
      }
      running ??= pump();
    },
    async drain() {
      while (running) await running;
    },
    stats: () => ({ sent, failed, queued: queue.length }),
  };
}
