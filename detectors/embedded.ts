/**
 * The detector in-process, for one machine without Kafka (`palisade demo`):
 * the same engine and feedback policy, fed by the sidecar's observer hook
 * (SidecarObserver.onDecision) instead of the decisions topic, applying
 * blocks straight into the sidecar's block-list store instead of the
 * block-list topic. Store changes flow back into the detector, so a manual
 * removal (an operator, the demo) wins until there is new evidence, and
 * expiries are counted.
 *
 *   const det = createEmbeddedDetector({ services, logger, config: { ... } });
 *   await composeSidecar({ settings, logger, services, observers: [det.observer] });
 */
import type { Logger } from 'pino';
import type { BlockChange } from '../src/blocklist/store.ts';
import { blockListStore } from '../src/blocklist/store.ts';
import type { DecodedBlockMessage } from '../src/blocklist/kafka-record.ts';
import type { SidecarObserver } from '../src/sidecar/observer.ts';
import type { Services } from '../src/pipeline/services.ts';
import type { DetectorMetrics } from './metrics.ts';
import { createAlertmanagerPusher, type AlertmanagerPusher } from './alerts/alertmanager.ts';
import { createWebhookSender, type WebhookSender } from './alerts/webhook.ts';
import { parseDetectorConfig, type DetectorConfig, type DetectorConfigInput } from './config.ts';
import { Detector, type Alert } from './detector.ts';

export interface EmbeddedDetectorOptions {
  /** The sidecar's services: its block-list store (service part "blocklist") receives the blocks. */
  readonly services: Services;
  readonly logger: Logger;
  /** A validated config, or a partial one validated here (defaults filled). */
  readonly config?: DetectorConfig | DetectorConfigInput;
  readonly metrics?: DetectorMetrics;
  /** Each published alert (after the feedback policy), e.g. to print it. */
  readonly onAlert?: (alert: Alert) => void;
  /** Recent alerts kept for inspection, at most. Default 1000. */
  readonly keepAlerts?: number;
}

export interface EmbeddedDetector {
  readonly observer: SidecarObserver;
  readonly detector: Detector;
  /** The most recent alerts, oldest first. */
  readonly alerts: readonly Alert[];
  readonly webhook: WebhookSender | null;
  readonly alertmanager: AlertmanagerPusher | null;
  close(): Promise<void>;
}

function isValidated(c: DetectorConfig | DetectorConfigInput | undefined): c is DetectorConfig {
  return c !== undefined && Object.isFrozen(c);
}

export function createEmbeddedDetector(o: EmbeddedDetectorOptions): EmbeddedDetector {
  const config = isValidated(o.config) ? o.config : parseDetectorConfig(o.config ?? {});
  const store = blockListStore(o.services);
  const log = o.logger.child({ part: 'detector' });
  const webhook = createWebhookSender(config.alerts.webhook, log, (ok) => o.metrics?.alertsPublished.inc({ channel: 'webhook', result: ok ? 'ok' : 'error' }));
  const alertmanager = createAlertmanagerPusher(config.alerts.alertmanager, { logger: log, now: o.services.now, onResult: (ok) => o.metrics?.alertsPublished.inc({ channel: 'alertmanager', result: ok ? 'ok' : 'error' }) });
  const keep = o.keepAlerts ?? 1000;
  const alerts: Alert[] = [];
  const detector = new Detector({
    config,
    logger: log,
    ...(o.metrics ? { metrics: o.metrics } : {}),
    now: o.services.now,
    outputs: {
      alert(a) {
        alerts.push(a);
        if (alerts.length > keep) alerts.splice(0, alerts.length - keep);
        webhook?.send(a);
        alertmanager?.fire(a);
        try {
          o.onAlert?.(a);
        } catch (err) {
          log.error({ err }, 'alert listener failed');
        }
      },
      ended(detection, at) {
        alertmanager?.resolveDetection(detection, at);
      },
      block(r) {
        try {
          store.add({ kind: r.kind, value: r.value, reason: r.reason, source: 'detector', expiresAt: r.expiresAt, rule: r.rule });
        } catch (err) {
          log.error({ err: (err as Error).message, kind: r.kind }, 'block refused by the block-list store');
        }
      },
    },
  });

  // The store is the block list here: its changes are what the topic carries in the Kafka setup.
  const off = store.onChange((c: BlockChange) => {
    const key = `${c.entry.kind}:${c.entry.value}`;
    let m: DecodedBlockMessage;
    if (c.type === 'added') m = { type: 'block', key, record: { v: 1, kind: c.entry.kind, value: c.entry.value, reason: c.entry.reason, source: c.entry.source, expiresAt: c.entry.expiresAt, addedAt: c.entry.addedAt, rule: c.entry.rule } };
    else {
      // The detector never removes entries: a removal is an operator's unblock; an expiry is the clock.
      m = { type: 'unblock', key, unblock: { kind: c.entry.kind, value: c.entry.value, source: c.type === 'expired' ? 'expiry' : 'manual', at: o.services.now(), actor: null, reason: null } };
      if (c.type === 'expired' && c.entry.source === 'detector') o.metrics?.blocksExpired.inc();
    }
    detector.onBlockList(m);
    // A removed or expired block resolves its alerts in Alertmanager.
    if (m.type === 'unblock') alertmanager?.resolveTarget(key, m.unblock.at);
  });

  let tracked = 0;
  const observer: SidecarObserver = {
    onDecision(record) {
      detector.observe(record, 0);
      if (o.metrics && ++tracked % 1024 === 0) o.metrics.clientsTracked.set(detector.engine.clients.size);
      o.metrics?.eventsConsumed.inc();
    },
  };

  return {
    observer,
    detector,
    alerts,
    webhook,
    alertmanager,
    async close() {
      off();
      await webhook?.drain();
      await alertmanager?.close();
    },
  };
}
