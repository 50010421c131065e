import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log/logger.ts';
import { explainRequest, identityFromFlags } from '../../src/policy/explain.ts';
import { loadPolicyFile } from '../../src/policy/load.ts';
import { createServices } from '../../src/sidecar/compose.ts';

const ORDERS = fileURLToPath(new URL('../validation/fixtures/orders-3.0.yaml', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'palisade-explain-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function load(yaml: string) {
  const file = join(dir, `p${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, yaml);
  return loadPolicyFile(file, createServices(createLogger({ level: 'silent' })));
}

const POLICY = (head = '') => `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: explain, version: "1" }
spec:
${head}
  authorization:
    rules:
      - id: orders
        paths: ["/api/orders", "/api/orders/**"]
        authenticated: true
  blocklist:
    entries:
      - id: bad-net
        cidr: 203.0.113.0/24
        reason: abuse from this network
  rateLimits:
    rules:
      - id: per-client
        key: [identity]
        rate: 10
        burst: 20
  validation:
    openapi:
      file: ${ORDERS}
      basePath: /api
`;

const who = identityFromFlags({ spiffeId: 'spiffe://test.local/ns/a/sa/b' });

describe('policy explain covers the block list, rate limits, limits and validation', () => {
  it('walks every stage in order and names the operation and the limits', async () => {
    const p = await load(POLICY());
    const r = explainRequest(p, { method: 'POST', path: '/api/orders', host: 'localhost', identity: who, clientIp: '198.51.100.4' });
    expect(r).toMatchObject({ verdict: 'allow', rule: 'orders', wouldDeny: [] });
    expect(r.trace).toEqual(
      expect.arrayContaining([
        'blocklist: not blocked (1 policy entries, 0 run-time entries)',
        'ratelimit: rate limit "per-client" applies: 10 per second, burst 20, keyed by identity',
        expect.stringMatching(/^validation: limits: body <= 1048576 bytes/),
        'validation: operation "createOrder" (openapi paths["/orders"].post) checks body (application/json, required)',
      ]),
    );
  });

  it('shows a block, an unknown route, and what audit mode would let through', async () => {
    const p = await load(POLICY());
    expect(explainRequest(p, { method: 'GET', path: '/api/orders', host: 'h', identity: who, clientIp: '203.0.113.9' })).toMatchObject({ verdict: 'deny', code: 'BLOCKED', stage: 'blocklist', rule: 'bad-net' });
    expect(explainRequest(p, { method: 'GET', path: '/api/orders/x/y', host: 'h', identity: who })).toMatchObject({ verdict: 'deny', code: 'ROUTE_UNKNOWN', stage: 'validation' });
    const audit = await load(POLICY('  auditStages: [blocklist, validation]'));
    const r = explainRequest(audit, { method: 'GET', path: '/api/orders/x/y', host: 'h', identity: who, clientIp: '203.0.113.9' });
    expect(r).toMatchObject({ verdict: 'allow', rule: 'orders' });
    expect(r.wouldDeny).toEqual([
      { stage: 'blocklist', code: 'BLOCKED', rule: 'bad-net' },
      { stage: 'validation', code: 'ROUTE_UNKNOWN', rule: null },
    ]);
  });
});
