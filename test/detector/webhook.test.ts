// The alert webhook against a real local HTTP receiver: Slack-style bodies, retries on a 5xx,
// nothing below the configured severity. The former "alertmanager" webhook format (what
// Alertmanager sends to receivers, not what it accepts) is refused with the way to Alertmanager,
// and so is an Alertmanager URL that is not an http(s) base URL.
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDetectorConfig } from '../../detectors/config.ts';
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

  it('posts each alert as a Slack message, retrying a 5xx', async () => {
    const logger = createLogger({ level: 'silent' });
    const services = createServices(logger);
    const det = createEmbeddedDetector({
      services,
      logger,
      config: { alerts: { webhook: { url, formats: ['slack'], minSeverity: 'high', retries: 2, timeoutMs: 2000 } } },
    });
    failNext = 1; // the first POST fails with 503 and is retried
    // A known client (six minutes of steady traffic) floods: a high/critical rate.burst alert.
    const traffic = generateTraffic({ seed: 51, durationMs: 7 * 60_000, benign: 3, attacks: [{ kind: 'flood', start: 6 * 60_000, durationMs: 20_000, warmAs: 'steady' }] });
    const base = Date.now() - 7 * 60_000;
    for (const q of traffic.requests) det.observer.onDecision?.(recordOf(q, traffic.clients[q.client]!, base, false));
    await det.webhook?.drain();
    const high = det.alerts.filter((a) => a.anomaly.severity === 'high' || a.anomaly.severity === 'critical');
    expect(high.length).toBeGreaterThan(0);
    // Nothing below minSeverity, one body per alert, the failed one retried.
    expect(received.length).toBe(high.length);
    expect(det.webhook?.stats()).toMatchObject({ failed: 0, sent: high.length });
    expect(received[0]!.contentType).toBe('application/json');
    expect(received[0]!.path).toBe('/hook');

    const slack = received.find((r) => 'blocks' in r.body)!;
    expect(String(slack.body['text'])).toMatch(/Palisade (high|critical) rate\.burst: .* — \*blocked\*/);
    expect((slack.body['blocks'] as { type: string }[]).map((b) => b.type)).toEqual(['header', 'section', 'section', 'context']);
    await det.close();
  });

  it('refuses the former "alertmanager" webhook format and says to use alerts.alertmanager', () => {
    expect(() => parseDetectorConfig({ alerts: { webhook: { url, formats: ['alertmanager', 'slack'] } } })).toThrow(/alerts\.webhook\.formats: "alertmanager" is no longer a webhook format.*alerts\.alertmanager\.urls/);
    expect(parseDetectorConfig({ alerts: { webhook: { url } } }).alerts.webhook.formats).toEqual(['slack']);
  });

  it('refuses an Alertmanager URL that is not an http(s) base URL, naming it and the form to use', () => {
    for (const bad of ['alertmanager:9093', 'ftp://am:21', 'http://am:9093/?x=1', 'not a url']) {
      expect(() => parseDetectorConfig({ alerts: { alertmanager: { urls: ['http://ok:9093', bad] } } })).toThrow(`alerts.alertmanager.urls[1] ${JSON.stringify(bad)} is not an Alertmanager base URL: write http(s)://host:port`);
    }
    expect(parseDetectorConfig({ alerts: { alertmanager: { urls: ['https://am.example/prefix'] } } }).alerts.alertmanager.urls).toEqual(['https://am.example/prefix']);
  });
});
