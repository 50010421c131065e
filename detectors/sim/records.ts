/**
 * Simulated requests as the decision records a sidecar would have written,
 * for feeding the engine without a network (benchmark, engine tests).
 */
import type { DecisionRecord } from '../../src/decision/record.ts';
import type { Code } from '../../src/errors/codes.ts';
import type { Identity } from '../../src/pipeline/types.ts';
import { uuidv7 } from '../../src/util/ids.ts';
import type { SimClient, SimRequest } from './traffic.ts';

const OUTCOME: Readonly<Record<SimRequest['outcome'], { code: Code; status: number; verdict: 'allow' | 'deny'; decidedBy: DecisionRecord['decidedBy'] }>> = {
  ok: { code: 'ALLOWED', status: 200, verdict: 'allow', decidedBy: 'forward' },
  'auth-fail': { code: 'AUTHN_TOKEN_INVALID', status: 401, verdict: 'deny', decidedBy: 'authn' },
  'not-found': { code: 'ALLOWED', status: 404, verdict: 'allow', decidedBy: 'forward' },
  violation: { code: 'SCHEMA_VIOLATION', status: 400, verdict: 'deny', decidedBy: 'validation' },
};

function identityOf(c: SimClient): Identity {
  return { subject: c.spiffeId, methods: ['mtls'], spiffeId: c.spiffeId, issuer: null, clientId: null, scopes: [], groups: [], claims: {}, tokenId: null, expiresAt: null };
}

/**
 * The record of one simulated request at `base + req.t`. Attackers that are new clients
 * (no benign phase) have no identity: they are keyed by IP, like an unauthenticated client.
 */
export function recordOf(req: SimRequest, client: SimClient, base: number, anonymous: boolean): DecisionRecord {
  const o = OUTCOME[req.outcome];
  const time = Math.floor(base + req.t);
  return {
    id: uuidv7(time),
    requestId: '0000000000000000',
    traceId: null,
    time,
    durationMs: 1.2,
    verdict: o.verdict,
    decidedBy: o.decidedBy,
    code: o.code,
    rule: null,
    wouldDeny: [],
    identity: anonymous ? null : identityOf(client),
    client: { ip: client.ip, port: 40000 + (client.index % 20000), forwardedFor: [] },
    server: { ip: '10.0.0.1', port: 8443 },
    tls: null,
    request: {
      method: req.method,
      path: req.path,
      host: 'api.sim.local',
      scheme: 'https',
      httpVersion: '1.1',
      userAgent: 'sim/1',
      contentType: req.bytesIn > 0 ? 'application/json' : null,
      route: req.route,
      params: null,
      bytesIn: req.bytesIn,
    },
    response: { status: o.status, bytesOut: 120 },
    stages: [],
    upstreamMs: o.verdict === 'allow' ? 1 : null,
    policy: { name: 'sim', version: '1', hash: 'sim' },
    detail: null,
  };
}
