import { afterEach, describe, expect, it } from 'vitest';
import fastify, { type FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { addMetricsRoute } from '../../src/telemetry/admin-metrics.ts';
import { decisionRecord } from './helpers/record.ts';
import { BlockListStore } from '../../src/blocklist/store.ts';
import { createSidecarMetrics, NO_ROUTE } from '../../src/sidecar/metrics.ts';
import { createDetectorMetrics } from '../../detectors/metrics.ts';

const record = decisionRecord;

/** Parses the text exposition into sample lines name{labels} -> value. */
async function samples(registry: Registry): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await registry.metrics()).split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

let app: FastifyInstance | null = null;
afterEach(async () => {
  await app?.close();
  app = null;
});

describe('sidecar metrics', () => {
  it('counts a decision by verdict, stage, code and route template, never the raw path or client', async () => {
    const registry = new Registry();
    const m = createSidecarMetrics(registry, { processMetrics: false });
    m.recordDecision(record());
    m.recordDecision(record());
    m.recordDecision(record({ verdict: 'deny', decidedBy: 'authz', code: 'AUTHZ_NO_MATCHING_RULE', rule: null, upstreamMs: null, path: '/admin/secret', route: null, response: { status: 403, bytesOut: 90 } }));
    const s = await samples(registry);
    expect(s.get('palisade_requests_total{verdict="allow",stage="forward",code="ALLOWED",route="/orders/{id}"}')).toBe(2);
    expect(s.get(`palisade_requests_total{verdict="deny",stage="authz",code="AUTHZ_NO_MATCHING_RULE",route="${NO_ROUTE}"}`)).toBe(1);
    expect(s.get('palisade_request_duration_seconds_count{verdict="allow",route="/orders/{id}"}')).toBe(2);
    expect(s.get('palisade_stage_duration_seconds_count{stage="authn",outcome="continue"}')).toBe(3);
    // 40 us lands in the 50 us bucket, not the 25 us one.
    expect(s.get('palisade_stage_duration_seconds_bucket{le="0.000025",stage="authn",outcome="continue"}')).toBe(0);
    expect(s.get('palisade_stage_duration_seconds_bucket{le="0.00005",stage="authn",outcome="continue"}')).toBe(3);
    expect(s.get('palisade_upstream_duration_seconds_count{route="/orders/{id}"}')).toBe(2);
    expect(s.get('palisade_sent_bytes_total{route="/orders/{id}"}')).toBe(240);
    const text = await registry.metrics();
    expect(text).not.toContain('/orders/42');
    expect(text).not.toContain('/admin/secret');
    expect(text).not.toContain('10.1.2.3');
  });

  it('derives upstream errors, block-list hits, rate limits and would-deny from decisions', async () => {
    const registry = new Registry();
    const m = createSidecarMetrics(registry, { processMetrics: false });
    m.recordDecision(record({ verdict: 'deny', decidedBy: 'upstream', code: 'UPSTREAM_TIMEOUT' }));
    m.recordDecision(record({ verdict: 'deny', decidedBy: 'blocklist', code: 'BLOCKED', upstreamMs: null }));
    m.recordDecision(record({ verdict: 'deny', decidedBy: 'ratelimit', code: 'RATE_LIMITED', rule: 'per-client', upstreamMs: null }));
    m.recordDecision(record({ wouldDeny: [{ stage: 'validation', code: 'SCHEMA_VIOLATION', rule: null }] }));
    const s = await samples(registry);
    expect(s.get('palisade_upstream_errors_total{code="UPSTREAM_TIMEOUT"}')).toBe(1);
    expect(s.get('palisade_blocklist_hits_total{route="/orders/{id}"}')).toBe(1);
    expect(s.get('palisade_rate_limited_total{route="/orders/{id}",code="RATE_LIMITED",rule="per-client"}')).toBe(1);
    expect(s.get('palisade_would_deny_total{stage="validation",code="SCHEMA_VIOLATION"}')).toBe(1);
  });

  it('the observer tracks policy loads, the active policy hash and TLS failures', async () => {
    const registry = new Registry();
    const m = createSidecarMetrics(registry, { processMetrics: false });
    const policy = (hash: string) => ({ name: 'orders', version: '3', hash, document: { spec: { blocklist: { entries: [] } } } }) as never;
    m.observer.onPolicyLoaded?.(policy('aaa'));
    m.observer.onPolicyLoaded?.(policy('bbb'));
    m.observer.onPolicyRefused?.(new Error('bad'));
    m.observer.onTlsHandshakeError?.('unknown_ca');
    const s = await samples(registry);
    expect(s.get('palisade_policy_reloads_total{result="ok"}')).toBe(2);
    expect(s.get('palisade_policy_reloads_total{result="refused"}')).toBe(1);
    expect(s.get('palisade_policy_info{name="orders",version="3",hash="bbb"}')).toBe(1);
    expect([...s.keys()].some((k) => k.includes('hash="aaa"'))).toBe(false);
    expect(s.get('palisade_tls_handshake_failures_total{reason="unknown_ca"}')).toBe(1);
  });

  it('tracks block-list entries by kind and source from the real store, and policy entries on load', async () => {
    const registry = new Registry();
    const m = createSidecarMetrics(registry, { processMetrics: false });
    let now = 1_000_000;
    const store = new BlockListStore({ now: () => now });
    store.add({ kind: 'ip', value: '203.0.113.7', reason: 'pre-existing', source: 'manual' });
    m.trackBlocklist(store);
    store.add({ kind: 'ip', value: '203.0.113.8', reason: 'burst', source: 'detector', ttlMs: 1000 });
    store.add({ kind: 'subject', value: 'mallory', reason: 'stuffing', source: 'detector' });
    store.add({ kind: 'ip', value: '203.0.113.7', reason: 'now by the detector', source: 'detector' }); // replaces the manual one
    let s = await samples(registry);
    expect(s.get('palisade_blocklist_entries{kind="ip",source="manual"}')).toBe(0);
    expect(s.get('palisade_blocklist_entries{kind="ip",source="detector"}')).toBe(2);
    expect(s.get('palisade_blocklist_entries{kind="subject",source="detector"}')).toBe(1);
    now += 2000;
    store.purge();
    store.remove('subject', 'mallory');
    const policy = { name: 'p', version: '1', hash: 'h', document: { spec: { blocklist: { entries: [{ cidr: '198.51.100.0/24', reason: 'x' }, { cidr: '192.0.2.0/24', reason: 'y' }, { tokenId: 'jti-1', reason: 'z' }] } } } };
    m.observer.onPolicyLoaded?.(policy as never);
    s = await samples(registry);
    expect(s.get('palisade_blocklist_entries{kind="ip",source="detector"}')).toBe(1);
    expect(s.get('palisade_blocklist_entries{kind="subject",source="detector"}')).toBe(0);
    expect(s.get('palisade_blocklist_entries{kind="cidr",source="policy"}')).toBe(2);
    expect(s.get('palisade_blocklist_entries{kind="tokenId",source="policy"}')).toBe(1);
    store.close();
  });

  it('watchSink turns running sink totals into counters at scrape time', async () => {
    const registry = new Registry();
    const m = createSidecarMetrics(registry, { processMetrics: false });
    let stats = { accepted: 10, delivered: 7, dropped: 0, buffered: 3, spoolBytes: 0 };
    m.watchSink('kafka', () => stats);
    let s = await samples(registry);
    expect(s.get('palisade_decision_events_published_total{sink="kafka"}')).toBe(7);
    expect(s.get('palisade_decision_buffer_events{sink="kafka"}')).toBe(3);
    stats = { accepted: 30, delivered: 20, dropped: 2, buffered: 8, spoolBytes: 4096 };
    s = await samples(registry);
    expect(s.get('palisade_decision_events_published_total{sink="kafka"}')).toBe(20);
    expect(s.get('palisade_decision_events_dropped_total{sink="kafka"}')).toBe(2);
    expect(s.get('palisade_decision_spool_bytes{sink="kafka"}')).toBe(4096);
  });
});

describe('detector metrics and the admin route', () => {
  it('serves both kinds with process metrics over a real admin listener', async () => {
    const sidecar = new Registry();
    createSidecarMetrics(sidecar);
    const detector = new Registry();
    const d = createDetectorMetrics(detector);
    d.anomalies.inc({ detection: 'burst', severity: 'high' });
    d.eventToBlock.observe(0.8);
    d.consumerLag.set({ partition: '0' }, 12);
    app = fastify();
    addMetricsRoute(app, detector);
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    const res = await fetch(`${address}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const body = await res.text();
    expect(body).toContain('palisade_detector_anomalies_total{detection="burst",severity="high"} 1');
    expect(body).toContain('palisade_detector_event_to_block_seconds_bucket{le="1"} 1');
    expect(body).toContain('palisade_detector_consumer_lag_events{partition="0"} 12');
    expect(body).toMatch(/^process_cpu_seconds_total /m);
    expect(body).toMatch(/^nodejs_eventloop_lag_seconds /m);
    expect(await sidecar.metrics()).toMatch(/^process_resident_memory_bytes /m);
  });
});
