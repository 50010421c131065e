import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startHarness, until, type Harness } from '../support/harness.ts';

const BANNED = 'spiffe://test.local/ns/shop/sa/banned';

const policy = (head: string, extraValidation = '') => `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: dry-run, version: "1" }
spec:
${head}
  authorization:
    rules:
      - id: orders-read
        methods: [GET]
        paths: ["/orders/**"]
        authenticated: true
  blocklist:
    entries:
      - id: banned-peer
        spiffeId: ${BANNED}
        reason: banned for abuse
  rateLimits:
    rules:
      - id: tiny
        key: [identity]
        rate: 1
        per: hour
        burst: 1
  limits:
    maxHeaderCount: 12
  validation:
${extraValidation}
    routes:
      - id: get-order
        method: GET
        path: /orders/{id}
        params:
          type: object
          properties: { id: { type: integer } }
`;

describe('dry-run (audit) decisions for each stage', () => {
  it('mode: audit lets everything through and records what each stage would deny', async () => {
    const h = await startHarness(policy('  mode: audit'));
    try {
      const c = await h.client(BANNED);
      const first = await send(c, `${h.base}/orders/abc`);
      expect(first.status).toBe(200);
      const second = await send(c, `${h.base}/admin`, { headers: Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`x-extra-${i}`, '1'])) });
      expect(second.status).toBe(200);
      await until(() => h.decisions.length === 2);
      const [d1, d2] = h.decisions;
      expect(d1).toMatchObject({ verdict: 'allow', code: 'ALLOWED' });
      expect(d1?.wouldDeny).toEqual([
        { stage: 'blocklist', code: 'BLOCKED', rule: 'banned-peer' },
        { stage: 'validation', code: 'SCHEMA_VIOLATION', rule: 'get-order' },
      ]);
      expect(d2?.wouldDeny).toEqual([
        { stage: 'blocklist', code: 'BLOCKED', rule: 'banned-peer' },
        { stage: 'ratelimit', code: 'RATE_LIMITED', rule: 'tiny' },
        { stage: 'authz', code: 'AUTHZ_NO_MATCHING_RULE', rule: null },
        { stage: 'validation', code: 'HEADERS_TOO_LARGE', rule: null },
        { stage: 'validation', code: 'ROUTE_UNKNOWN', rule: null },
      ]);
      expect(d2?.stages.filter((s) => s.outcome === 'would_deny').map((s) => s.stage)).toEqual(['blocklist', 'ratelimit', 'authz', 'validation']);
      // The service is told, too.
      expect(h.upstream.requests.at(-1)?.headers['x-palisade-would-deny']).toBe('BLOCKED,RATE_LIMITED,AUTHZ_NO_MATCHING_RULE,HEADERS_TOO_LARGE,ROUTE_UNKNOWN');
    } finally {
      await h.close();
    }
  });

  it('auditStages dry-runs the named stages only', async () => {
    const h = await startHarness(policy('  auditStages: [blocklist, ratelimit]'));
    try {
      const c = await h.client(BANNED);
      expect((await send(c, `${h.base}/orders/1`)).status).toBe(200);
      const denied = await send(c, `${h.base}/admin`);
      expect(denied.json).toMatchObject({ code: 'AUTHZ_NO_MATCHING_RULE' });
      await until(() => h.decisions.length === 2);
      expect(h.decisions[1]).toMatchObject({ verdict: 'deny', decidedBy: 'authz' });
      expect(h.decisions[1]?.wouldDeny).toEqual([
        { stage: 'blocklist', code: 'BLOCKED', rule: 'banned-peer' },
        { stage: 'ratelimit', code: 'RATE_LIMITED', rule: 'tiny' },
      ]);
    } finally {
      await h.close();
    }
  });

  it('per-rule audit in validation: an audited route and unknownRoutes: audit', async () => {
    const h = await startHarness(policy('  auditStages: [blocklist]', '    unknownRoutes: audit').replace('        method: GET\n        path: /orders/{id}', '        method: GET\n        path: /orders/{id}\n        audit: true'));
    try {
      const c = await h.client('spiffe://test.local/ns/shop/sa/web');
      expect((await send(c, `${h.base}/orders/abc`)).status).toBe(200);
      await until(() => h.decisions.length === 1);
      expect(h.decisions[0]?.wouldDeny).toEqual([{ stage: 'validation', code: 'SCHEMA_VIOLATION', rule: 'get-order' }]);
      // /orders itself is allowed by authorization but no validation route describes it.
      const c2 = await h.client('spiffe://test.local/ns/shop/sa/other');
      expect((await send(c2, `${h.base}/orders`)).status).toBe(200);
      await until(() => h.decisions.length === 2);
      expect(h.decisions[1]?.wouldDeny).toEqual([{ stage: 'validation', code: 'ROUTE_UNKNOWN', rule: null }]);
    } finally {
      await h.close();
    }
  });
});
