// The alert webhook against a real local HTTP receiver: Alertmanager (version 4) and Slack-style
// bodies for the same alert, retries on a 5xx, nothing below the configured severity.
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmbeddedDetector } from '../../detectors/embedded.ts';
import { recordOf } from '../../detectors/sim/records.ts';
import { generateTraffic } from '../../detectors/sim/traffic.ts';
import { createLogger } from '../../src/log/logger.ts';
import { createServices } from '../../src/sidecar/compose.ts';

interface Received {
  readonly path: string;
  readonly contentType: string | undefined;
  readonly body: Record<string, unknown>;
}

describe('alert webhook', () => {
  let server: Server;
  let url = '';
  const received: Received[] = [];
  let failNext = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (failNext > 0) {
          failNext--;
          res.statusCode = 503;
          res.end();
          return;
        }
        received.push({ path: req.url ?? '', contentType: req.headers['content-type'], body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('posts each alert as an Alertmanager notification and a Slack message, retrying a 5xx', async () => {
    const logger = createLogger({ level: 'silent' });
    const services = createServices(logger);
    const det = createEmbeddedDetector({
      services,
      logger,
      config: { alerts: { webhook: { url, formats: ['alertmanager', 'slack'], minSeverity: 'high', retries: 2, timeoutMs: 2000 } } },
    });
    failNext = 1; // the first POST fails with 503 and is retried
    // A known client (six minutes of steady traffic) floods: a high/critical rate.burst alert.
    const traffic = generateTraffic({ seed: 51, durationMs: 7 * 60_000, benign: 3, attacks: [{ kind: 'flood', start: 6 * 60_000, durationMs: 20_000, warmAs: 'steady' }] });
    const base = Date.now() - 7 * 60_000;
    for (const q of traffic.requests) det.observer.onDecision?.(recordOf(q, traffic.clients[q.client]!, base, false));
    await det.webhook?.drain();
    const high = det.alerts.filter((a) => a.anomaly.severity === 'high' || a.anomaly.severity === 'critical');
    expect(high.length).toBeGreaterThan(0);
    // Nothing below minSeverity, two bodies per alert, the failed one retried.
    expect(received.length).toBe(high.length * 2);
    expect(det.webhook?.stats()).toMatchObject({ failed: 0, sent: high.length * 2 });

    const am = received.find((r) => 'version' in r.body)!;
    expect(am.contentType).toBe('application/json');
    expect(am.path).toBe('/hook');
    expect(am.body).toMatchObject({ version: '4', status: 'firing', receiver: 'palisade-detector', groupLabels: { alertname: 'PalisadeAnomaly' } });
    const alert = (am.body['alerts'] as Record<string, Record<string, string>>[])[0]!;
    expect(alert['status']).toBe('firing');
    expect(alert['labels']).toMatchObject({ alertname: 'PalisadeAnomaly', detection: 'rate.burst', action: 'block', client_kind: 'identity' });
    expect(['high', 'critical']).toContain(alert['labels']!['severity']);
    expect(alert['annotations']!['summary']).toMatch(/requests\/s over the last 1 s/);
    expect(alert['annotations']!['description']).toMatch(/baseline \(client\).*threshold/s);
    expect(Date.parse(alert['startsAt'] as unknown as string)).toBeGreaterThan(0);
    // A block has an end: the block's expiry.
    expect(Date.parse(alert['endsAt'] as unknown as string)).toBeGreaterThan(Date.parse(alert['startsAt'] as unknown as string));
    expect(alert['fingerprint']).toMatch(/^[0-9a-f]{16}$/);

    const slack = received.find((r) => 'blocks' in r.body)!;
    expect(String(slack.body['text'])).toMatch(/Palisade (high|critical) rate\.burst: .* — \*blocked\*/);
    expect((slack.body['blocks'] as { type: string }[]).map((b) => b.type)).toEqual(['header', 'section', 'section', 'context']);
    await det.close();
  });
});
