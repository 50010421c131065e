import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { IncomingHttpHeaders } from 'node:http';
import { startTracing, TRACING_OFF, traceIdFromTraceparent, tracingOptionsFromEnv, type Tracing } from '../../src/telemetry/tracing.ts';
import { startOtlpReceiver, type OtlpReceiver } from './helpers/otlp-receiver.ts';
import { decisionRecord } from './helpers/record.ts';

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';

let receiver: OtlpReceiver;
let tracing: Tracing | null = null;

beforeEach(async () => {
  receiver = await startOtlpReceiver();
});
afterEach(async () => {
  await tracing?.shutdown();
  tracing = null;
  await receiver.close();
});

function start(sampleRatio: number, respectParentSampled = true): Promise<Tracing> {
  return startTracing({ endpoint: receiver.url, sampleRatio, respectParentSampled, serviceName: 'palisade-test', upstream: 'http://127.0.0.1:8081', exportDelayMs: 50 });
}

describe('traceparent parsing (tracing off)', () => {
  it('accepts valid W3C headers and rejects malformed or all-zero ones', () => {
    expect(traceIdFromTraceparent(`00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`)).toBe(CLIENT_TRACE);
    expect(traceIdFromTraceparent(`00-${CLIENT_TRACE}-${CLIENT_SPAN}-01-extra`)).toBeNull();
    expect(traceIdFromTraceparent(`01-${CLIENT_TRACE}-${CLIENT_SPAN}-01-extra`)).toBe(CLIENT_TRACE);
    expect(traceIdFromTraceparent(`ff-${CLIENT_TRACE}-${CLIENT_SPAN}-01`)).toBeNull();
    expect(traceIdFromTraceparent(`00-${'0'.repeat(32)}-${CLIENT_SPAN}-01`)).toBeNull();
    expect(traceIdFromTraceparent(`00-${CLIENT_TRACE.toUpperCase()}-${CLIENT_SPAN}-01`)).toBeNull();
    expect(traceIdFromTraceparent(undefined)).toBeNull();
  });

  it('off: no spans, the client trace id is reported and its header is left for the upstream', async () => {
    const headers: IncomingHttpHeaders = { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` };
    const rt = TRACING_OFF.startRequest(headers, 'GET', 'https');
    expect(rt.traceId).toBe(CLIENT_TRACE);
    rt.beginStages();
    expect(rt.injectUpstream(headers)).toBe(headers);
    rt.end(decisionRecord());
    expect(headers.traceparent).toBe(`00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`);
    expect(TRACING_OFF.startRequest({}, 'GET', 'https').traceId).toBeNull();
    expect(tracingOptionsFromEnv({}).endpoint).toBeNull();
    expect(tracingOptionsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' }).endpoint).toBeNull();
    expect(tracingOptionsFromEnv({ PALISADE_OTLP_ENDPOINT: 'http://c:4318', PALISADE_TRACE_SAMPLE_RATIO: '0.25' })).toMatchObject({ endpoint: 'http://c:4318', sampleRatio: 0.25, respectParentSampled: true });
    expect(() => tracingOptionsFromEnv({ PALISADE_TRACE_SAMPLE_RATIO: '2' })).toThrow(/between 0 and 1/);
  });
});

describe('tracing on, real OTLP/HTTP receiver', () => {
  it('continues the client trace: server span, stage children, upstream child whose context goes upstream', async () => {
    tracing = await start(1);
    const headers: IncomingHttpHeaders = { traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`, tracestate: 'vendor=abc' };
    const rt = tracing.startRequest(headers, 'GET', 'https');
    expect(rt.traceId).toBe(CLIENT_TRACE);
    rt.beginStages();
    const upstream: IncomingHttpHeaders = { ...headers };
    rt.injectUpstream(upstream);
    rt.end(decisionRecord({ traceId: rt.traceId }));
    await tracing.forceFlush();
    const spans = await receiver.waitFor((s) => s.length >= 4);
    expect(receiver.requests[0]?.contentType).toContain('application/json');
    const server = spans.find((s) => s.kind === 2)!;
    const client = spans.find((s) => s.kind === 3)!;
    const stages = spans.filter((s) => s.name.startsWith('palisade.'));
    expect(server).toBeDefined();
    expect(server.traceId).toBe(CLIENT_TRACE);
    expect(server.parentSpanId).toBe(CLIENT_SPAN);
    expect(server.name).toBe('GET /orders/{id}');
    expect(server.serviceName).toBe('palisade-test');
    expect(server.attributes).toMatchObject({ 'http.route': '/orders/{id}', 'palisade.verdict': 'allow', 'palisade.code': 'ALLOWED', 'http.response.status_code': 200 });
    expect(stages.map((s) => s.name)).toEqual(['palisade.authn', 'palisade.authz']);
    for (const s of [...stages, client]) {
      expect(s.traceId).toBe(CLIENT_TRACE);
      expect(s.parentSpanId).toBe(server.spanId);
    }
    // Stages are laid out back to back, inside the server span.
    expect(stages[0]!.endNs).toBe(stages[1]!.startNs);
    expect(stages[0]!.startNs >= server.startNs && stages[1]!.endNs <= server.endNs).toBe(true);
    // 40 us as measured by the runner (each end rounded to the nanosecond).
    expect(Number(stages[0]!.endNs - stages[0]!.startNs)).toBeCloseTo(40_000, -1);
    // The upstream sees our CLIENT span as its parent, in the client's trace, sampled, with tracestate kept.
    expect(upstream.traceparent).toBe(`00-${CLIENT_TRACE}-${client.spanId}-01`);
    expect(upstream.tracestate).toBe('vendor=abc');
    expect(client.attributes).toMatchObject({ 'server.address': '127.0.0.1', 'server.port': 8081, 'http.response.status_code': 200 });
  });

  it('ratio 0: an allowed request is not exported, a denied one always is (with its stage spans)', async () => {
    tracing = await start(0);
    const allowed = tracing.startRequest({}, 'GET', 'https');
    allowed.beginStages();
    const up: IncomingHttpHeaders = {};
    allowed.injectUpstream(up);
    // Unsampled: the upstream is told so.
    expect(up.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    allowed.end(decisionRecord());

    const denied = tracing.startRequest({}, 'DELETE', 'https');
    denied.beginStages();
    denied.end(
      decisionRecord({
        verdict: 'deny',
        decidedBy: 'authz',
        code: 'AUTHZ_DENY_RULE',
        rule: 'no-deletes',
        upstreamMs: null,
        response: { status: 403, bytesOut: 80 },
        stages: [
          { stage: 'authn', us: 30, outcome: 'continue' },
          { stage: 'authz', us: 5, outcome: 'deny' },
        ],
      }),
    );
    await tracing.forceFlush();
    const spans = await receiver.waitFor((s) => s.length >= 3);
    expect(new Set(spans.map((s) => s.traceId))).toEqual(new Set([denied.traceId]));
    expect(spans.some((s) => s.traceId === allowed.traceId)).toBe(false);
    const server = spans.find((s) => s.kind === 2)!;
    expect(server.attributes['palisade.code']).toBe('AUTHZ_DENY_RULE');
    expect(server.parentSpanId).toBe('');
    const authz = spans.find((s) => s.name === 'palisade.authz')!;
    expect(authz.parentSpanId).toBe(server.spanId);
    expect(authz.attributes['palisade.code']).toBe('AUTHZ_DENY_RULE');
    expect(tracing.stats()).toEqual({ sampled: 0, deniedKept: 1, discarded: 1 });
  });

  it('ratio sampling decides by trace id: about the ratio of root requests is sampled, none is turned into spans unless exported', async () => {
    tracing = await start(0.25);
    let sampled = 0;
    for (let i = 0; i < 4000; i++) {
      const rt = tracing.startRequest({}, 'GET', 'https');
      const up = rt.injectUpstream({});
      if (String(up.traceparent).endsWith('-01')) sampled++;
      rt.end(decisionRecord());
    }
    // Binomial(4000, 0.25): 1000 +- 27 (sd); the bounds are 7 sd away.
    expect(sampled).toBeGreaterThan(800);
    expect(sampled).toBeLessThan(1200);
    expect(tracing.stats()).toEqual({ sampled, deniedKept: 0, discarded: 4000 - sampled });
  });

  it('a client that asked not to sample is still traced when denied; respectParentSampled=false ignores its flag', async () => {
    tracing = await start(0, false);
    const rt = tracing.startRequest({ traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` }, 'GET', 'https');
    // Ratio 0 and the client's sampled flag not trusted: not sampled, same trace id.
    const up: IncomingHttpHeaders = {};
    rt.injectUpstream(up);
    expect(up.traceparent).toMatch(new RegExp(`^00-${CLIENT_TRACE}-[0-9a-f]{16}-00$`));
    rt.end(decisionRecord({ verdict: 'deny', decidedBy: 'upstream', code: 'UPSTREAM_TIMEOUT', stages: [], response: { status: 504, bytesOut: 0 } }));
    await tracing.forceFlush();
    const spans = await receiver.waitFor((s) => s.length >= 2);
    const server = spans.find((s) => s.kind === 2)!;
    const client = spans.find((s) => s.kind === 3)!;
    expect(server.traceId).toBe(CLIENT_TRACE);
    expect(server.statusCode).toBe(2);
    expect(client.attributes['error.type']).toBe('UPSTREAM_TIMEOUT');
  });
});
