// Alerts into a real Alertmanager (Debian's prometheus-alertmanager): a real sidecar's decisions feed
// the detector (embedded), whose alerts are pushed to Alertmanager's API. The anomaly appears in
// Alertmanager with its labels, Alertmanager delivers it to a webhook receiver, a silence created
// through Alertmanager's API stops a notification, and removing the block resolves the alert.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmbeddedDetector, type EmbeddedDetector } from '../../detectors/embedded.ts';
import { recordOf } from '../../detectors/sim/records.ts';
import { generateTraffic, type SimClient } from '../../detectors/sim/traffic.ts';
import { blockListStore } from '../../src/blocklist/store.ts';
import { createLogger } from '../../src/log/logger.ts';
import { createServices } from '../../src/sidecar/compose.ts';
import { startAlertmanager, startReceiver, type Alertmanager, type AmAlert, type AmNotification } from '../support/alertmanager.ts';
import { startHarness, until, type Harness } from '../support/harness.ts';
import { TEST_CONFIG } from './support/config.ts';
import { eventually } from './support/kafka-env.ts';
import { closeClients, liveClients, replay, useSimApi, type LiveClient } from './support/live.ts';

const POLICY = `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: detector-alertmanager, version: "1" }
spec:
  authorization:
    rules:
      - id: api
        paths: [/**]
        public: true
`;

const BLOCK_SECONDS = 120;

describe('alerts in a real Alertmanager', () => {
  let am: Alertmanager;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let h: Harness;
  let det: EmbeddedDetector;
  const clients: LiveClient[] = [];
  let attacker: SimClient;

  const notified = (client: string, status?: 'firing' | 'resolved'): AmNotification[] =>
    receiver.notifications.filter((n) => n.alerts.some((a) => a.labels['client'] === client && (status === undefined || a.status === status)));

  /** Floods from fresh clients (indexes from firstIndex) until each attacker is blocked at the sidecar. */
  async function flood(seed: number, firstIndex: number, attackers: number): Promise<SimClient[]> {
    const traffic = generateTraffic({
      seed,
      durationMs: 11_000,
      benign: 2,
      firstIndex,
      // Long enough for a loaded machine; each attacker stops at its first BLOCKED.
      attacks: Array.from({ length: attackers }, () => ({ kind: 'flood' as const, start: 3000, durationMs: 8000, rate: 300, warmAs: 'steady' as const })),
    });
    const live = await liveClients([h.pki], traffic.clients);
    clients.push(...live);
    await replay(live, traffic.requests, { bases: [h.base], stopClient: (c, s) => s.code === 'BLOCKED' && traffic.clients.some((x) => x.index === c && x.attack !== null) });
    const out = traffic.clients.filter((c) => c.attack === 'flood');
    for (const c of out) expect(blockListStore(h.services).get('spiffeId', c.spiffeId)?.source, `${c.name} blocked`).toBe('detector');
    return out;
  }

  beforeAll(async () => {
    receiver = await startReceiver();
    am = await startAlertmanager({ webhookUrl: receiver.url });
    const logger = createLogger({ level: 'silent' });
    const services = createServices(logger);
    det = createEmbeddedDetector({
      services,
      logger,
      config: {
        ...TEST_CONFIG,
        // medium too: on a loaded machine a flood may reach only a medium score; this test is about
        // Alertmanager, not about thresholds.
        feedback: { medium: { action: 'block', durationSeconds: BLOCK_SECONDS }, high: { action: 'block', durationSeconds: BLOCK_SECONDS }, critical: { action: 'block', durationSeconds: BLOCK_SECONDS } },
        alerts: { alertmanager: { urls: [am.url], resendIntervalSeconds: 1, generatorUrl: 'https://grafana.example/d/palisade?var-client={client}&alert={alert_id}' } },
      },
    });
    h = await startHarness(POLICY, { services, observers: [det.observer] });
    useSimApi(h.upstream);
  });
  afterAll(async () => {
    await closeClients(clients);
    await det?.close();
    await h?.close();
    await am?.close();
    await receiver?.close();
  });

  it('an anomaly appears in Alertmanager with its labels and is delivered to the receiver', async () => {
    [attacker] = (await flood(21, 100, 1)) as [SimClient];
    await eventually(async () => (await am.alerts([`client="${attacker.spiffeId}"`])).some((a) => a.labels['action'] === 'block'), 10_000, 'alert in Alertmanager');
    const [got] = (await am.alerts([`client="${attacker.spiffeId}"`, 'action="block"'])) as [AmAlert];
    // The detector's alert behind it (the latest of that detection and severity: one alert in Alertmanager).
    const alert = det.alerts.findLast((a) => a.action === 'block' && a.anomaly.client.key === attacker.spiffeId && a.anomaly.detection === got.labels['detection'] && a.anomaly.severity === got.labels['severity'])!;
    expect(alert).toBeDefined();
    expect(got.labels).toEqual({ alertname: 'PalisadeAnomaly', detection: alert.anomaly.detection, severity: alert.anomaly.severity, action: 'block', client: attacker.spiffeId, client_kind: 'identity' });
    expect(got.status.state).toBe('active');
    expect(got.annotations).toMatchObject({ summary: alert.anomaly.summary, alert_id: alert.id, evidence_id: alert.anomaly.evidenceId, blocked: `spiffeId ${attacker.spiffeId}` });
    expect(got.annotations['description']).toMatch(/baseline \((client|population|none)\).*threshold/s);
    // Active until the block expires.
    expect(Date.parse(got.endsAt)).toBe(alert.block!.expiresAt);
    expect(got.generatorURL).toBe(`https://grafana.example/d/palisade?var-client=${encodeURIComponent(attacker.spiffeId)}&alert=${alert.id}`);
    // Alertmanager routed it to the receiver (group_wait 200 ms).
    await eventually(() => notified(attacker.spiffeId, 'firing').length > 0, 10_000, 'firing notification');
    const n = notified(attacker.spiffeId, 'firing')[0]!;
    expect(n).toMatchObject({ version: '4', status: 'firing', receiver: 'test', groupLabels: { alertname: 'PalisadeAnomaly', client: attacker.spiffeId } });
    expect(det.alertmanager?.stats().failed).toBe(0);
  });

  it('a silence created through Alertmanager stops the notification of a silenced client only', async () => {
    // Two more flooders, fed to the detector as decision records (seeded, no sidecar: the two alerts
    // come at once whatever the machine's load); the first is silenced by client label beforehand.
    const traffic = generateTraffic({ seed: 22, durationMs: 7 * 60_000, benign: 0, firstIndex: 200, attacks: [{ kind: 'flood', start: 6 * 60_000, durationMs: 20_000, warmAs: 'steady' }, { kind: 'flood', start: 6 * 60_000, durationMs: 20_000, warmAs: 'steady' }] });
    const [silenced, loud] = traffic.clients.filter((c) => c.attack === 'flood') as [SimClient, SimClient];
    const silenceId = await am.silence({ alertname: 'PalisadeAnomaly', client: silenced.spiffeId }, 'known load test');
    const base = Date.now() - 7 * 60_000;
    for (const q of traffic.requests) det.observer.onDecision?.(recordOf(q, traffic.clients.find((c) => c.index === q.client)!, base, false));
    // Both are in Alertmanager; the silenced one is suppressed by that silence.
    await eventually(async () => (await am.alerts([`client="${silenced.spiffeId}"`])).length > 0 && (await am.alerts([`client="${loud.spiffeId}"`])).length > 0, 10_000, 'both alerts in Alertmanager');
    for (const a of await am.alerts([`client="${silenced.spiffeId}"`])) {
      expect(a.status.state).toBe('suppressed');
      expect(a.status.silencedBy).toEqual([silenceId]);
    }
    // The loud one is delivered; by then the silenced one, pushed at the same time with the same
    // group timings, would have been too. Give the dispatcher one more group interval to be sure.
    await eventually(() => notified(loud.spiffeId, 'firing').length > 0, 10_000, 'notification of the unsilenced client');
    await new Promise((r) => setTimeout(r, 1500));
    expect(notified(silenced.spiffeId)).toEqual([]);
  });

  it('removing the block resolves the alert: gone from the active alerts, a resolved notification', async () => {
    expect(blockListStore(h.services).remove('spiffeId', attacker.spiffeId)).toBe(true);
    const removedAt = Date.now();
    await eventually(async () => (await am.alerts([`client="${attacker.spiffeId}"`])).length === 0, 10_000, 'alert resolved in Alertmanager');
    console.log(`alertmanager: resolved in GET /api/v2/alerts ${Date.now() - removedAt} ms after the block was removed (upper bound)`);
    await eventually(() => notified(attacker.spiffeId, 'resolved').length > 0, 10_000, 'resolved notification');
    const resolved = notified(attacker.spiffeId, 'resolved').at(-1)!.alerts.find((a) => a.labels['client'] === attacker.spiffeId)!;
    expect(resolved.status).toBe('resolved');
    expect(Date.parse(resolved.endsAt)).toBeLessThan(det.alerts.find((a) => a.anomaly.client.key === attacker.spiffeId && a.block)!.block!.expiresAt);
    // The detector no longer re-sends it; the re-sends of the others keep them active.
    await until(() => det.alertmanager!.stats().queued === 0);
    expect(det.alertmanager!.stats().failed).toBe(0);
  });
});
