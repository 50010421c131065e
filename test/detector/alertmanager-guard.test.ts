// The blast-radius guard's alert in a real Alertmanager: an issuer incident (every token refused as
// expired for two minutes) trips the guard; its one alert is active in Alertmanager while the guard
// holds (its end moves forward at each re-send) and resolves when the guard lets go, and the
// receiver hears both. Seeded traffic ending now, fed to the detector core in its own time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAlertmanagerPusher, type AlertmanagerPusher } from '../../detectors/alerts/alertmanager.ts';
import { parseDetectorConfig } from '../../detectors/config.ts';
import { Detector, POPULATION_CLIENT, type Alert } from '../../detectors/detector.ts';
import { recordOf } from '../../detectors/sim/records.ts';
import { generateTraffic } from '../../detectors/sim/traffic.ts';
import type { DecisionRecord } from '../../src/decision/record.ts';
import { createLogger } from '../../src/log/logger.ts';
import { startAlertmanager, startReceiver, type Alertmanager } from '../support/alertmanager.ts';
import { eventually } from './support/kafka-env.ts';

const MIN = 60_000;

describe('the guard alert in Alertmanager', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let am: Alertmanager;
  let pusher: AlertmanagerPusher;
  beforeAll(async () => {
    receiver = await startReceiver();
    am = await startAlertmanager({ webhookUrl: receiver.url, groupBy: ['alertname', 'detection'] });
    const cfg = parseDetectorConfig({ alerts: { alertmanager: { urls: [am.url], resendIntervalSeconds: 1 } } }).alerts.alertmanager;
    pusher = createAlertmanagerPusher(cfg, { logger: createLogger({ level: 'silent' }) })!;
  });
  afterAll(async () => {
    await pusher?.close();
    await am?.close();
    await receiver?.close();
  });

  it('is active while the guard holds and resolves when it lets go', async () => {
    // Twelve minutes of traffic ending now; minutes 3-5 every token is refused as expired.
    const base = Date.now() - 12 * MIN;
    const traffic = generateTraffic({ seed: 72, durationMs: 12 * MIN, benign: 24 });
    const expired = (r: DecisionRecord): DecisionRecord => ({ ...r, verdict: 'deny', code: 'AUTHN_TOKEN_EXPIRED', decidedBy: 'authn', response: { status: 401, bytesOut: 90 }, upstreamMs: null });
    let now = base;
    const alerts: Alert[] = [];
    const det = new Detector({
      config: parseDetectorConfig({}),
      now: () => now,
      outputs: { alert: (a) => (alerts.push(a), pusher.fire(a)), block: () => undefined, ended: (d, at) => pusher.resolveDetection(d, at) },
    });
    const feed = (from: number, to: number) => {
      for (const q of traffic.requests) {
        if (q.t < from || q.t >= to) continue;
        let r = recordOf(q, traffic.clients[q.client]!, base, false);
        if (q.t >= 3 * MIN && q.t < 5 * MIN) r = expired(r);
        now = r.time;
        det.observe(r);
      }
    };

    // Into the incident: the guard holds.
    feed(0, 4.5 * MIN);
    expect(det.guard.holding()).not.toBeNull();
    const guard = alerts.filter((a) => a.anomaly.detection === 'guard.blast-radius');
    expect(guard).toHaveLength(1);
    expect(alerts.filter((a) => a.action === 'block')).toEqual([]);
    const selector = ['detection="guard.blast-radius"'];
    await eventually(async () => (await am.alerts(selector)).length === 1, 10_000, 'guard alert in Alertmanager');
    const [firing] = await am.alerts(selector);
    expect(firing!.labels).toMatchObject({ alertname: 'PalisadeAnomaly', detection: 'guard.blast-radius', client: POPULATION_CLIENT, action: 'alert' });
    expect(firing!.annotations['summary']).toContain('AUTHN_TOKEN_EXPIRED');
    expect(firing!.status.state).toBe('active');
    // Still active past its first end: the re-send moves the end forward while the guard holds.
    const firstEnd = Date.parse(firing!.endsAt);
    await eventually(async () => Date.parse((await am.alerts(selector))[0]?.endsAt ?? '0') > firstEnd, 10_000, 'end moved forward by the re-send');
    await eventually(() => receiver.notifications.some((n) => n.status === 'firing' && n.groupLabels['detection'] === 'guard.blast-radius'), 10_000, 'firing notification');

    // The population recovers: the guard lets go and its alert resolves.
    feed(4.5 * MIN, 12 * MIN);
    expect(det.guard.holding()).toBeNull();
    await eventually(async () => (await am.alerts(selector)).length === 0, 10_000, 'guard alert resolved');
    await eventually(() => receiver.notifications.some((n) => n.status === 'resolved' && n.alerts.some((a) => a.labels['detection'] === 'guard.blast-radius')), 10_000, 'resolved notification');
    expect(pusher.stats().failed).toBe(0);
  });
});
