/** A decision record for tests of telemetry consumers (metrics, tracing). */
import type { DecisionRecord } from '../../../src/decision/record.ts';

export function decisionRecord(over: Partial<DecisionRecord> & { route?: string | null; path?: string } = {}): DecisionRecord {
  const { route = '/orders/{id}', path = '/orders/42', ...rest } = over;
  return {
    id: '0190-0000',
    requestId: 'req-1',
    traceId: null,
    time: Date.now(),
    durationMs: 3.2,
    verdict: 'allow',
    decidedBy: 'forward',
    code: 'ALLOWED',
    rule: 'orders-read',
    wouldDeny: [],
    identity: null,
    client: { ip: '10.1.2.3', port: 5555, forwardedFor: [] },
    server: { ip: '127.0.0.1', port: 8443 },
    tls: null,
    request: { method: 'GET', path, host: 'svc', scheme: 'https', httpVersion: '1.1', userAgent: null, contentType: null, route, params: null, bytesIn: 10 },
    response: { status: 200, bytesOut: 120 },
    stages: [
      { stage: 'authn', us: 40, outcome: 'continue' },
      { stage: 'authz', us: 7, outcome: 'continue' },
    ],
    upstreamMs: 2.5,
    policy: null,
    detail: null,
    ...rest,
  };
}
