// How alerts reach Alertmanager when things go wrong: one of two Alertmanagers down does not stop
// the other (each URL has its own queue); an Alertmanager that restarts with nothing gets the
// active alerts again from the periodic re-send, with no new anomaly; credentials in a URL are
// sent as basic authentication and never logged; a refusal (4xx) is not retried.
import { createServer } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAlertmanagerPusher, type PostableAlert } from '../../detectors/alerts/alertmanager.ts';
import { parseDetectorConfig } from '../../detectors/config.ts';
import { createEmbeddedDetector, type EmbeddedDetector } from '../../detectors/embedded.ts';
import { recordOf } from '../../detectors/sim/records.ts';
import { generateTraffic } from '../../detectors/sim/traffic.ts';
import { createLogger } from '../../src/log/logger.ts';
import { createServices } from '../../src/sidecar/compose.ts';
import { startAlertmanager, startReceiver, type Alertmanager } from '../support/alertmanager.ts';
import { captureLog } from '../support/log-capture.ts';
import { listenOnLoopback } from '../support/loopback.ts';
import { eventually } from './support/kafka-env.ts';

/** A seeded flood fed to an embedded detector as decision records: its alerts, at once. */
function feedFlood(det: EmbeddedDetector, seed: number, firstIndex: number): string {
  const traffic = generateTraffic({ seed, durationMs: 7 * 60_000, benign: 0, firstIndex, attacks: [{ kind: 'flood', start: 6 * 60_000, durationMs: 20_000, warmAs: 'steady' }] });
  const base = Date.now() - 7 * 60_000;
  for (const q of traffic.requests) det.observer.onDecision?.(recordOf(q, traffic.clients.find((c) => c.index === q.client)!, base, false));
  return traffic.clients[0]!.spiffeId;
}

describe('Alertmanager delivery', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let am: Alertmanager;
  beforeAll(async () => {
    receiver = await startReceiver();
    am = await startAlertmanager({ webhookUrl: receiver.url });
  });
  afterAll(async () => {
    await am?.close();
    await receiver?.close();
  });

  it('keeps delivering to one Alertmanager while another is down, and re-sends to one that restarted empty', async () => {
    const logger = createLogger({ level: 'silent' });
    const services = createServices(logger);
    // 127.0.0.1:1 refuses connections: a replica that is down.
    const det = createEmbeddedDetector({ services, logger, config: { alerts: { alertmanager: { urls: ['http://127.0.0.1:1', am.url], resendIntervalSeconds: 1, retries: 0, timeoutMs: 2000 } } } });
    try {
      const client = feedFlood(det, 61, 700);
      const raised = Date.now();
      expect(det.alerts.some((a) => a.anomaly.client.key === client)).toBe(true);
      await eventually(async () => (await am.alerts([`client="${client}"`])).length > 0, 15_000, 'alert in the Alertmanager that is up');
      console.log(`alertmanager: alert seen in GET /api/v2/alerts ${Date.now() - raised} ms after the detector raised it, another Alertmanager URL down (upper bound: polled every 50 ms)`);
      await eventually(() => det.alertmanager!.stats().failed > 0, 15_000, 'the down one counted as failed');
      const before = (await am.alerts([`client="${client}"`])).map((a) => a.labels);

      // The Alertmanager restarts on the same address with no data: the re-send brings the alerts back.
      const port = Number(new URL(am.url).port);
      await am.close();
      am = await startAlertmanager({ webhookUrl: receiver.url, port });
      expect(await am.alerts([`client="${client}"`])).toEqual([]);
      const alertsBefore = det.alerts.length;
      await eventually(async () => (await am.alerts([`client="${client}"`])).length === before.length, 15_000, 'alerts re-sent after the restart');
      expect((await am.alerts([`client="${client}"`])).map((a) => a.labels)).toEqual(before);
      // No new anomaly was needed: the detector raised nothing meanwhile.
      expect(det.alerts.length).toBe(alertsBefore);
    } finally {
      await det.close();
    }
  });

  it('sends credentials in the URL as basic authentication, never logs them, and does not retry a refusal', async () => {
    const seen: { path: string; authorization: string | undefined; body: PostableAlert[] }[] = [];
    let answer = 200;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({ path: req.url ?? '', authorization: req.headers.authorization, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as PostableAlert[] });
        res.statusCode = answer;
        res.end(answer === 200 ? '' : '{"code":400,"message":"bad alert"}');
      });
    });
    const { port, stop } = await listenOnLoopback(server);
    const log = captureLog('debug');
    const cfg = parseDetectorConfig({ alerts: { alertmanager: { urls: [`http://palisade:s3cr%40t-pw@127.0.0.1:${port}/am/`], retries: 2, timeoutMs: 2000 } } }).alerts.alertmanager;
    const pusher = createAlertmanagerPusher(cfg, { logger: log.logger })!;
    // Real alerts from the detector, pushed by hand.
    const services = createServices(createLogger({ level: 'silent' }));
    const det = createEmbeddedDetector({ services, logger: createLogger({ level: 'silent' }) });
    try {
      feedFlood(det, 62, 800);
      const alert = det.alerts.find((a) => a.block !== null)!;
      expect(alert).toBeDefined();
      pusher.fire(alert);
      await pusher.drain();
      expect(seen).toHaveLength(1);
      expect(seen[0]!.path).toBe('/am/api/v2/alerts');
      expect(seen[0]!.authorization).toBe(`Basic ${Buffer.from('palisade:s3cr@t-pw').toString('base64')}`);
      expect(seen[0]!.body).toEqual([
        expect.objectContaining({ labels: expect.objectContaining({ alertname: 'PalisadeAnomaly', client: alert.anomaly.client.key, action: 'block' }), startsAt: new Date(alert.anomaly.time).toISOString(), endsAt: new Date(alert.block!.expiresAt).toISOString() }),
      ]);

      answer = 400;
      pusher.resend();
      await pusher.drain();
      // Refused: not retried (a 4xx will not change), logged with the host and the answer, never the password.
      expect(seen).toHaveLength(2);
      expect(pusher.stats()).toMatchObject({ sent: 1, failed: 1 });
      const warn = log.records().find((r) => r['msg'] === 'Alertmanager refused the alerts');
      expect(warn).toMatchObject({ status: 400, host: `127.0.0.1:${port}` });
      expect(log.text()).not.toContain('s3cr');
    } finally {
      await pusher.close();
      await det.close();
      await stop();
    }
  });
});
