/**
 * Metrics, traces and logs of a real sidecar (real mTLS, real upstream, real OTLP/HTTP receiver):
 * spans per request with stage children, the trace id in the decision record, the client's
 * traceparent continued to the upstream, /metrics on the admin listener, log lines with the
 * request id and trace id.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Agent } from 'undici';
import { Registry } from 'prom-client';
import { loadSettings } from '../../src/config/settings.ts';
import { createMemorySink } from '../../src/decision/sinks/ndjson.ts';
import { createLogger } from '../../src/log/logger.ts';
import { composeSidecar } from '../../src/sidecar/compose.ts';
import type { Sidecar } from '../../src/sidecar/server.ts';
import { createSidecarMetrics } from '../../src/sidecar/metrics.ts';
import { startTracing, type Tracing } from '../../src/telemetry/tracing.ts';
import { createPki, loopbackSidecarEnv, send, startUpstream, until, type Pki, type Upstream } from '../support/harness.ts';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './helpers/otlp-receiver.ts';

const POLICY = `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: telemetry-test, version: "7" }
spec:
  authorization:
    roles:
      - name: reader
        subjects:
          - spiffeId: spiffe://test.local/ns/shop/sa/reader
    rules:
      - id: orders-read
        methods: [GET]
        paths: ["/orders/{orderId}"]
        roles: [reader]
`;

const CLIENT_TRACE = '0af7651916cd43dd8448eb211c80319c';
const CLIENT_SPAN = 'b7ad6b7169203331';

let pki: Pki;
let upstream: Upstream;
let receiver: OtlpReceiver;
let tracing: Tracing;
let sidecar: Sidecar;
let agent: Agent;
const sink = createMemorySink();
const logLines: Record<string, unknown>[] = [];
const metrics = createSidecarMetrics(new Registry(), { processMetrics: false });
let base = '';

beforeAll(async () => {
  pki = await createPki();
  upstream = await startUpstream();
  receiver = await startOtlpReceiver();
  const policyFile = join(pki.dir, 'policy.yaml');
  writeFileSync(policyFile, POLICY);
  const settings = loadSettings({
    PALISADE_POLICY: policyFile,
    ...loopbackSidecarEnv(pki, upstream.url),
    PALISADE_ACCESS_LOG: 'true',
    PALISADE_UPSTREAM_CONNECT_TIMEOUT_MS: '500',
  });
  // Ratio 0: only a client's sampled flag or a deny gets a request exported.
  tracing = await startTracing({ endpoint: receiver.url, sampleRatio: 0, respectParentSampled: true, serviceName: 'palisade-sidecar-test', upstream: upstream.url, exportDelayMs: 50 });
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logLines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const logger = createLogger({ level: 'info' }, out);
  sidecar = await composeSidecar({ settings, logger, sink, metrics, tracing });
  base = `https://127.0.0.1:${sidecar.tlsPort}`;
  const pem = await pki.client('spiffe://test.local/ns/shop/sa/reader');
  agent = new Agent({ connect: { ca: pki.ca.cert, cert: pem.cert, key: pem.key, servername: 'localhost' } });
});

afterAll(async () => {
  await agent?.close();
  await sidecar?.close();
  await tracing?.shutdown();
  await upstream?.close();
  await receiver?.close();
  if (pki) rmSync(pki.dir, { recursive: true, force: true });
});

const byTrace = (spans: ReceivedSpan[], traceId: string) => spans.filter((s) => s.traceId === traceId);

describe('sidecar telemetry', () => {
  it('traces requests: the client trace continues to the upstream, denies are always kept, the decision carries the trace id', async () => {
    // 1. Allowed, the client asked for sampling: exported, in the client's trace.
    const sampled = await send(agent, `${base}/orders/1`, { headers: { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` } });
    expect(sampled.status).toBe(200);
    // 2. Allowed, no traceparent, ratio 0: not exported.
    const unsampled = await send(agent, `${base}/orders/2`);
    expect(unsampled.status).toBe(200);
    // 3. Denied, no traceparent, ratio 0: exported anyway.
    const denied = await send(agent, `${base}/admin/users`);
    expect(denied.status).toBe(403);
    await until(() => sink.records.length >= 3);
    const [d1, d2, d3] = sink.records;

    expect(d1!.traceId).toBe(CLIENT_TRACE);
    expect(d2!.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(d3!.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set([d1!.traceId, d2!.traceId, d3!.traceId]).size).toBe(3);

    await tracing.forceFlush();
    const spans = await receiver.waitFor((s) => byTrace(s, CLIENT_TRACE).length >= 2 + d1!.stages.length && byTrace(s, d3!.traceId!).length >= 1 + d3!.stages.length);

    // The sampled request: SERVER span child of the client's span, one child per stage, one upstream CLIENT span.
    const t1 = byTrace(spans, CLIENT_TRACE);
    const server1 = t1.find((s) => s.kind === 2)!;
    expect(server1.parentSpanId).toBe(CLIENT_SPAN);
    expect(server1.name).toBe('GET /orders/{orderId}');
    expect(server1.serviceName).toBe('palisade-sidecar-test');
    expect(server1.attributes).toMatchObject({ 'palisade.verdict': 'allow', 'palisade.code': 'ALLOWED', 'palisade.request_id': d1!.requestId, 'http.response.status_code': 200, 'palisade.rule': 'orders-read' });
    const stageSpans = t1.filter((s) => s.kind === 1);
    expect(d1!.stages.length).toBeGreaterThan(0);
    expect(stageSpans.map((s) => s.attributes['palisade.stage'])).toEqual(d1!.stages.map((s) => s.stage));
    for (const s of stageSpans) expect(s.parentSpanId).toBe(server1.spanId);
    const client1 = t1.find((s) => s.kind === 3)!;
    expect(client1.parentSpanId).toBe(server1.spanId);
    // The upstream got our CLIENT span as parent, in the client's trace.
    const upReq = upstream.requests.find((r) => r.url === '/orders/1')!;
    expect(upReq.headers['traceparent']).toBe(`00-${CLIENT_TRACE}-${client1.spanId}-01`);
    // The unsampled allowed request told the upstream "not sampled" and was not exported.
    const upReq2 = upstream.requests.find((r) => r.url === '/orders/2')!;
    expect(upReq2.headers['traceparent']).toMatch(new RegExp(`^00-${d2!.traceId}-[0-9a-f]{16}-00$`));
    expect(byTrace(spans, d2!.traceId!)).toEqual([]);

    // The denied request: a root SERVER span with the deny facts and its stage children.
    const t3 = byTrace(spans, d3!.traceId!);
    const server3 = t3.find((s) => s.kind === 2)!;
    expect(server3.parentSpanId).toBe('');
    expect(server3.attributes).toMatchObject({ 'palisade.verdict': 'deny', 'palisade.code': 'AUTHZ_NO_MATCHING_RULE', 'palisade.decided_by': 'authz', 'http.response.status_code': 403 });
    const authz = t3.find((s) => s.name === 'palisade.authz')!;
    expect(authz.parentSpanId).toBe(server3.spanId);
    expect(authz.attributes).toMatchObject({ 'palisade.stage.outcome': 'deny', 'palisade.code': 'AUTHZ_NO_MATCHING_RULE' });
    expect(t3.some((s) => s.kind === 3)).toBe(false); // never forwarded
    expect(tracing.stats()).toEqual({ sampled: 1, deniedKept: 1, discarded: 1 });
  });

  it('serves /metrics on the admin listener with the decisions, the policy hash and nothing unbounded', async () => {
    const res = await fetch(`http://127.0.0.1:${sidecar.adminPort}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('palisade_requests_total{verdict="allow",stage="forward",code="ALLOWED",route="/orders/{orderId}"} 2');
    expect(text).toContain('palisade_requests_total{verdict="deny",stage="authz",code="AUTHZ_NO_MATCHING_RULE",route="(none)"} 1');
    expect(text).toContain(`palisade_policy_info{name="telemetry-test",version="7",hash="${sidecar.policy()!.hash}"} 1`);
    expect(text).toContain('palisade_policy_reloads_total{result="ok"} 1');
    expect(text).toMatch(/^palisade_requests_in_flight 0$/m);
    expect(text).toContain('palisade_decision_events_published_total{sink="custom"} 3');
    expect(text).not.toContain('/orders/1');
    expect(text).not.toContain('/admin/users');
    expect(text).not.toContain('spiffe://');
  });

  it('logs every request with its request id and trace id, and an upstream failure with both', async () => {
    await upstream.close(); // the next allowed request finds nothing listening
    const r = await send(agent, `${base}/orders/3`);
    expect(r.status).toBe(502);
    await until(() => sink.records.length >= 4);
    const d4 = sink.records[3]!;
    expect(d4.code).toBe('UPSTREAM_UNREACHABLE');
    await until(() => logLines.filter((l) => l['msg'] === 'request').length >= 4);
    const access = logLines.filter((l) => l['msg'] === 'request');
    expect(access.map((l) => l['requestId'])).toEqual(sink.records.map((d) => d.requestId));
    expect(access.map((l) => l['traceId'])).toEqual(sink.records.map((d) => d.traceId));
    // A deny's line says why (the client's body does not).
    expect(access[3]).toMatchObject({ code: 'UPSTREAM_UNREACHABLE', detail: 'upstream: ECONNREFUSED' });
    const upErr = logLines.find((l) => l['msg'] === 'upstream error')!;
    expect(upErr).toMatchObject({ requestId: d4.requestId, traceId: d4.traceId, code: 'UPSTREAM_UNREACHABLE' });
    // A 5xx deny is kept too, with the failed upstream span.
    await tracing.forceFlush();
    const spans = await receiver.waitFor((s) => byTrace(s, d4.traceId!).some((x) => x.kind === 3));
    const up = byTrace(spans, d4.traceId!).find((s) => s.kind === 3)!;
    expect(up.attributes['error.type']).toBe('UPSTREAM_UNREACHABLE');
    expect(up.statusCode).toBe(2);
  });
});
