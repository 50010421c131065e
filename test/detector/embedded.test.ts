// The whole loop in one process (what `palisade demo` runs): a real sidecar, its observer
// feeding the detector, blocks applied to the sidecar's own block-list store.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockListStore } from '../../src/blocklist/store.ts';
import { createLogger } from '../../src/log/logger.ts';
import { createServices } from '../../src/sidecar/compose.ts';
import { createEmbeddedDetector, type EmbeddedDetector } from '../../detectors/embedded.ts';
import { generateTraffic } from '../../detectors/sim/traffic.ts';
import { startHarness, until, type Harness } from '../support/harness.ts';
import { TEST_CONFIG } from './support/config.ts';
import { closeClients, liveClients, replay, useSimApi, type LiveClient, type Sent } from './support/live.ts';

const POLICY = `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: detector-embedded, version: "1" }
spec:
  authorization:
    rules:
      - id: api
        paths: [/**]
        public: true
`;

describe('embedded detector', () => {
  let h: Harness;
  let det: EmbeddedDetector;
  let clients: LiveClient[] = [];
  beforeAll(async () => {
    const logger = createLogger({ level: 'silent' });
    const services = createServices(logger);
    det = createEmbeddedDetector({ services, logger, config: TEST_CONFIG });
    h = await startHarness(POLICY, { services, observers: [det.observer] });
    useSimApi(h.upstream);
  });
  afterAll(async () => {
    await closeClients(clients);
    await det?.close();
    await h?.close();
  });

  it('blocks a flooding client at the sidecar and leaves bursty benign clients alone', async () => {
    const floodStart = 5000;
    const traffic = generateTraffic({ seed: 11, durationMs: 9000, benign: 6, attacks: [{ kind: 'flood', start: floodStart, durationMs: 4000, rate: 300, warmAs: 'steady' }], firstIndex: 100 });
    clients = await liveClients([h.pki], traffic.clients);
    const attacker = traffic.clients.find((c) => c.attack === 'flood')!;
    const start = Date.now();
    let firstBlocked: Sent | null = null;
    const results = await replay(clients, traffic.requests, {
      bases: [h.base],
      startAt: start,
      onResult: (s) => {
        if (s.code === 'BLOCKED' && s.req.client === attacker.index && firstBlocked === null) firstBlocked = s;
      },
    });
    const blocked = results.filter((r) => r.code === 'BLOCKED');
    const falsePositives = new Set(blocked.filter((r) => r.req.client !== attacker.index).map((r) => r.req.client));
    expect(falsePositives.size).toBe(0);
    expect(firstBlocked).not.toBeNull();
    const fb = firstBlocked as unknown as Sent;
    const timeToBlockMs = fb.doneAt - (start + floodStart);
    console.log(`embedded: flood at 300 rps blocked at the sidecar ${timeToBlockMs} ms after it started; benign clients blocked: ${falsePositives.size}`);
    // The block is the detector's, for this client's SPIFFE ID, and explains itself.
    const entry = blockListStore(h.services).get('spiffeId', attacker.spiffeId);
    expect(entry).toMatchObject({ source: 'detector' });
    expect(entry?.rule).toMatch(/^detector:/);
    const alert = det.alerts.find((a) => a.action === 'block' && a.anomaly.client.key === attacker.spiffeId);
    expect(alert).toBeDefined();
    const an = alert!.anomaly;
    expect(an.observed).toBeGreaterThanOrEqual(an.threshold);
    expect(an.window.seconds).toBeGreaterThan(0);
    expect(an.baseline.unit.length).toBeGreaterThan(0);
    expect(an.summary.length).toBeGreaterThan(20);
    await until(() => h.decisions.some((d) => d.code === 'BLOCKED' && d.rule === entry?.rule));
  });
});
