/**
 * Where the detector's alerts and blocks go in the Kafka service: alerts to the alerts topic (the
 * OCSF Detection Finding), Alertmanager and the webhook (both optional), blocks to the compacted block-list topic. The
 * sends are asynchronous; `settle()` waits for those in flight (the consumer waits for them after
 * each batch, and close() before the last checkpoint).
 */
import kafkajs, { type Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { encodeBlock } from '../../src/blocklist/kafka-record.ts';
import type { AlertmanagerPusher } from '../alerts/alertmanager.ts';
import type { WebhookSender } from '../alerts/webhook.ts';
import type { Alert, DetectorOutputs } from '../detector.ts';
import type { DetectorMetrics } from '../metrics.ts';

// kafkajs is CommonJS: named exports come from the default export. Alerts are keyed by client with the
// default (Java-compatible murmur2) partitioner, chosen explicitly (also silences kafkajs' v2 warning).
const { Partitioners } = kafkajs;

/** The producer options every detector output uses: idempotent, no topic auto-creation. */
export const PRODUCER_OPTIONS = { idempotent: true, maxInFlightRequests: 5, allowAutoTopicCreation: false, createPartitioner: Partitioners.DefaultPartitioner };

export interface KafkaOutputs {
  readonly outputs: DetectorOutputs;
  /** Alerts and blocks handed to the outputs so far. */
  counts(): { readonly alerts: number; readonly blocks: number };
  /** Sends in flight right now. */
  pending(): number;
  /** Resolves when the sends in flight now have succeeded or failed. */
  settle(): Promise<void>;
}

export interface KafkaOutputsOptions {
  readonly producer: Producer;
  readonly alertsTopic: string;
  readonly blocklistTopic: string;
  /** How an alert is written to the alerts topic (the OCSF Detection Finding). */
  readonly encodeAlert: (alert: Alert) => unknown;
  readonly webhook: WebhookSender | null;
  readonly alertmanager: AlertmanagerPusher | null;
  readonly metrics: DetectorMetrics | undefined;
  readonly log: Logger;
}

export function createKafkaOutputs(o: KafkaOutputsOptions): KafkaOutputs {
  const { producer, webhook, log } = o;
  const m = o.metrics;
  let alerts = 0;
  let blocks = 0;
  const inFlight = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
  };
  const outputs: DetectorOutputs = {
    alert(a) {
      alerts++;
      webhook?.send(a);
      o.alertmanager?.fire(a);
      track(
        producer.send({ topic: o.alertsTopic, acks: -1, messages: [{ key: a.anomaly.client.key, value: JSON.stringify(o.encodeAlert(a)), headers: { 'palisade-detection': a.anomaly.detection, 'palisade-severity': a.anomaly.severity } }] }).then(
          () => m?.alertsPublished.inc({ channel: 'kafka', result: 'ok' }),
          (err: Error) => {
            m?.alertsPublished.inc({ channel: 'kafka', result: 'error' });
            log.error({ err: err.message, alert: a.id }, 'alert not published');
          },
        ),
      );
    },
    ended(detection, at) {
      o.alertmanager?.resolveDetection(detection, at);
    },
    block(r) {
      blocks++;
      track(
        producer.send({ topic: o.blocklistTopic, acks: -1, messages: [encodeBlock(r)] }).catch((err: Error) => {
          log.error({ err: err.message, kind: r.kind }, 'block not published');
        }),
      );
    },
  };
  return {
    outputs,
    counts: () => ({ alerts, blocks }),
    pending: () => inFlight.size,
    async settle() {
      if (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
  };
}
