/**
 * Detector anomalies as OCSF Detection Findings (2004): valid against our
 * JSON Schema and the official OCSF 1.8.0 definition, the anomaly explained
 * in anomaly_analyses (target, baseline, observed value over the window,
 * threshold), evidence linked by decision event uid, and read back.
 */
import { describe, expect, it } from 'vitest';
import { anomalyFromDetectionFinding, toOcsfDetectionFinding, type AnomalyInput } from '../../../src/decision/ocsf/detection-finding.ts';
import { validateOcsf } from '../../../src/decision/ocsf/validate.ts';
import { uuidv7 } from '../../../src/util/ids.ts';
import { checkEvent, loadOcsf } from './ocsf-source.ts';

const T = Date.UTC(2025, 5, 1, 12, 0, 0);

const burst: AnomalyInput = {
  detection: 'rate.burst',
  severity: 'high',
  score: 6.2,
  metric: 'requests per second',
  unit: 'req/s',
  observed: 310,
  threshold: 50,
  thresholdRule: 'max(floor 30, 4 × mean 2.1, mean + 6σ 14.2)',
  baseline: { source: 'client', mean: 2.1, stddev: 2.0125, samples: 3600, unit: 'req/s' },
  window: { seconds: 10, start: T - 10_000, end: T },
  route: null,
  client: { key: 'spiffe://prod.example/ns/shop/sa/scraper', kind: 'identity', ip: '10.1.4.99', subject: 'spiffe://prod.example/ns/shop/sa/scraper', spiffeId: 'spiffe://prod.example/ns/shop/sa/scraper', tokenId: null },
  evidenceId: uuidv7(T),
  time: T,
  summary: 'spiffe://prod.example/ns/shop/sa/scraper sent 310 req/s over 10 s against a baseline of 2.1 req/s (threshold 50)',
};

const population: AnomalyInput = {
  detection: 'population.not-found',
  severity: 'critical',
  score: 14,
  metric: '404 ratio',
  unit: 'ratio',
  observed: 0.93,
  threshold: 0.0664,
  thresholdRule: 'population p99 0.0332 × 2',
  baseline: { source: 'population', mean: 0.012, stddev: 0.01, samples: 412, unit: 'ratio' },
  window: { seconds: 60, start: T - 60_000, end: T },
  route: '/orders/{id}',
  client: { key: '203.0.113.50', kind: 'ip', ip: '203.0.113.50', subject: null, spiffeId: null, tokenId: null },
  evidenceId: uuidv7(T),
  evidenceIds: [uuidv7(T - 2000), uuidv7(T - 1000)],
  time: T,
  summary: '203.0.113.50: 93% of requests to /orders/{id} were 404 (population threshold 6.6%)',
  id: uuidv7(T + 1),
  response: { action: 'block', until: T + 600_000 },
};

const floor: AnomalyInput = { ...burst, detection: 'auth.failures', severity: 'low', baseline: { source: 'none', mean: 0, stddev: 0, samples: 0, unit: 'failures' }, metric: 'authentication failures', unit: 'failures', observed: 40, threshold: 30, thresholdRule: 'floor 30', score: 1.33 };

describe('OCSF Detection Finding from detector anomalies', () => {
  const ocsf = loadOcsf();

  it.each([
    ['client baseline burst', burst],
    ['population detection on a route, IP client, blocked', population],
    ['absolute floor, no baseline', floor],
  ] as const)('%s: valid against both schemas, read back', (_name, a) => {
    const e = JSON.parse(JSON.stringify(toOcsfDetectionFinding(a))) as Record<string, unknown>;
    expect(validateOcsf('detection-finding', e).errors).toEqual([]);
    expect(checkEvent(ocsf, 'detection_finding', e)).toEqual([]);
    const back = anomalyFromDetectionFinding(e);
    const expected = { ...a, id: (e['metadata'] as { uid: string }).uid, ...(a.evidenceIds ? { evidenceIds: [...new Set([...a.evidenceIds, a.evidenceId])] } : {}) };
    expect(back).toEqual(expected);
  });

  it('explains the anomaly in anomaly_analyses: target, baseline, observed value over the window, threshold', () => {
    const e = toOcsfDetectionFinding(burst);
    expect(e).toMatchObject({
      class_uid: 2004,
      category_uid: 2,
      activity_id: 1,
      type_uid: 200401,
      type_name: 'Detection Finding: Create',
      severity_id: 4,
      severity: 'High',
      status_id: 1,
      status: 'New',
      is_alert: true,
      time: T,
      start_time: T - 10_000,
      end_time: T,
      metadata: { log_name: 'palisade.alerts', event_code: 'rate.burst', correlation_uid: burst.client.key, product: { name: 'Palisade', feature: { name: 'detector' } } },
    });
    expect(e.anomaly_analyses).toEqual([
      {
        analysis_targets: [{ name: burst.client.key, type: 'client identity' }],
        baselines: [{ observation_parameter: 'requests per second', observation_type: 'client baseline', observed_pattern: 'mean 2.1 req/s, stddev 2.0125, 3600 samples', observations: [{ value: '2.1', count: 3600 }] }],
        anomalies: [
          {
            observation_parameter: 'requests per second',
            observation_type: 'threshold exceeded',
            observed_pattern: `310 req/s over 10 s > threshold 50 = ${burst.thresholdRule} (score 6.2)`,
            observations: [{ value: '310', timespan: { duration: 10_000, start_time: T - 10_000, end_time: T, type_id: 1, type: 'Milliseconds' } }],
          },
        ],
      },
    ]);
    expect(e.finding_info).toMatchObject({ uid: e.metadata.uid, types: ['rate.burst'], analytic: { uid: 'rate.burst', name: 'rate.burst', type_id: 3, type: 'Statistical', category: 'rate' }, related_events: [{ uid: burst.evidenceId }], related_events_count: 1, data_sources: ['palisade.decisions'] });
    expect(e.evidences).toEqual([{ uid: burst.evidenceId, name: 'decision', src_endpoint: { ip: '10.1.4.99' }, user: { uid: burst.client.subject, name: burst.client.subject } }]);
  });

  it('names the route as a second target, links every evidence event, keeps the block decision', () => {
    const e = toOcsfDetectionFinding(population);
    expect(e.metadata.uid).toBe(population.id);
    expect(e.finding_info.uid).toBe(population.id);
    expect(e.severity_id).toBe(5);
    expect(e.anomaly_analyses[0]?.analysis_targets).toEqual([
      { name: '203.0.113.50', type: 'client IP address' },
      { name: '/orders/{id}', type: 'route' },
    ]);
    expect(e.finding_info.related_events.map((r) => r.uid)).toEqual([...(population.evidenceIds ?? []), population.evidenceId]);
    expect(e.evidences[0]?.user).toBeUndefined();
    expect(e.unmapped.palisade.response).toEqual({ action: 'block', until: T + 600_000 });
    expect(toOcsfDetectionFinding(floor).finding_info.analytic).toMatchObject({ type_id: 1, type: 'Rule' });
    expect(toOcsfDetectionFinding(floor).severity_id).toBe(2);
  });

  it('an alert whose block was withheld (guard, caps) says why and stays valid', () => {
    // The detector's blast-radius guard and block caps publish the alert with the reason the block was not issued.
    const e = JSON.parse(JSON.stringify(toOcsfDetectionFinding({ ...floor, id: uuidv7(T + 2), response: { action: 'alert', until: null, suppressed: 'guard' } }))) as { unmapped: { palisade: { response: unknown } } };
    expect(e.unmapped.palisade.response).toEqual({ action: 'alert', until: null, suppressed: 'guard' });
    expect(validateOcsf('detection-finding', e).errors).toEqual([]);
    expect(checkEvent(ocsf, 'detection_finding', e)).toEqual([]);
  });

  it('a client known by neither IP nor subject still has a valid evidence', () => {
    const odd: AnomalyInput = { ...burst, client: { key: 'unix:/run/x.sock', kind: 'ip', ip: 'unix:/run/x.sock', subject: null, spiffeId: null, tokenId: null } };
    const e = JSON.parse(JSON.stringify(toOcsfDetectionFinding(odd))) as Record<string, unknown>;
    expect(e['evidences']).toEqual([{ uid: odd.evidenceId, name: 'decision', data: { client_key: 'unix:/run/x.sock' } }]);
    expect(validateOcsf('detection-finding', e).errors).toEqual([]);
    expect(checkEvent(ocsf, 'detection_finding', e)).toEqual([]);
  });

  it('refuses to read an event that is not a Palisade finding', () => {
    expect(() => anomalyFromDetectionFinding({ class_uid: 4002 })).toThrow(/not a Palisade Detection Finding/);
  });
});
