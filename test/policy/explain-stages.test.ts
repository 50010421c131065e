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
const ORDER = { customerEmail: 'a@example.com', items: [{ sku: 'ABC-1234', quantity: 2 }], payment: { method: 'card', cardToken: 'tok_12345678' } };

describe('policy explain covers the block list, rate limits, limits and validation', () => {
  it('walks every stage in order and names the operation and the limits', async () => {
    const p = await load(POLICY());
    const r = await explainRequest(p, { method: 'POST', path: '/api/orders', host: 'localhost', identity: who, clientIp: '198.51.100.4', headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(ORDER)) });
    expect(r).toMatchObject({ verdict: 'allow', rule: 'orders', wouldDeny: [], policy: { name: 'explain', version: '1', hash: p.hash } });
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
    expect(await explainRequest(p, { method: 'GET', path: '/api/orders', host: 'h', identity: who, clientIp: '203.0.113.9' })).toMatchObject({ verdict: 'deny', code: 'BLOCKED', stage: 'blocklist', rule: 'bad-net' });
    expect(await explainRequest(p, { method: 'GET', path: '/api/orders/x/y', host: 'h', identity: who })).toMatchObject({ verdict: 'deny', code: 'ROUTE_UNKNOWN', stage: 'validation' });
    const audit = await load(POLICY('  auditStages: [blocklist, validation]'));
    const r = await explainRequest(audit, { method: 'GET', path: '/api/orders/x/y', host: 'h', identity: who, clientIp: '203.0.113.9' });
    expect(r).toMatchObject({ verdict: 'allow', rule: 'orders' });
    expect(r.wouldDeny).toEqual([
      { stage: 'blocklist', code: 'BLOCKED', rule: 'bad-net' },
      { stage: 'validation', code: 'ROUTE_UNKNOWN', rule: null },
    ]);
  });

  it('judges the headers, query and body it is given with the validation stage itself', async () => {
    const p = await load(POLICY());
    const post = (body: string | null, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
      explainRequest(p, { method: 'POST', path: '/api/orders', host: 'h', identity: who, headers, body: body === null ? null : Buffer.from(body) });
    // No body: the operation requires one.
    expect(await post(null)).toMatchObject({ verdict: 'deny', code: 'SCHEMA_VIOLATION', stage: 'validation', rule: 'createOrder' });
    const bad = await post(JSON.stringify({ ...ORDER, items: [] }));
    expect(bad).toMatchObject({ verdict: 'deny', code: 'SCHEMA_VIOLATION', rule: 'createOrder' });
    expect(bad.trace.some((l) => l.startsWith('validation: refused: SCHEMA_VIOLATION') && l.includes('/body/items'))).toBe(true);
    expect(await post(JSON.stringify(ORDER), { 'content-type': 'text/plain' })).toMatchObject({ verdict: 'deny', code: 'CONTENT_TYPE_NOT_ALLOWED' });
    expect(await post('{"a":1,"a":2}')).toMatchObject({ verdict: 'deny', code: 'BODY_DUPLICATE_KEY' });
    expect(await post(JSON.stringify(ORDER))).toMatchObject({ verdict: 'allow' });
    // The query string is checked against the operation's parameters.
    expect(await explainRequest(p, { method: 'GET', path: '/api/orders?limit=500', host: 'h', identity: who })).toMatchObject({ verdict: 'deny', code: 'SCHEMA_VIOLATION', rule: 'listOrders' });
    expect(await explainRequest(p, { method: 'GET', path: '/api/orders?limit=5', host: 'h', identity: who })).toMatchObject({ verdict: 'allow' });
  });

  it('names the values of a failed condition', async () => {
    const p = await load(`
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: tenants, version: "1" }
spec:
  authentication:
    jwt:
      issuers: [{ issuer: "https://idp.test/", jwksUri: "https://idp.test/jwks", audiences: [api] }]
    defaultRequire: jwt
  authorization:
    rules:
      - id: own-tenant
        methods: [GET]
        paths: ["/tenants/{tenantId}/orders"]
        authenticated: true
        when: [{ claim: tenant, equalsParam: tenantId }]
`);
    const bob = identityFromFlags({ subject: 'bob', claims: '{"tenant":"globex"}' });
    const r = await explainRequest(p, { method: 'GET', path: '/tenants/acme/orders', host: 'h', identity: bob });
    expect(r).toMatchObject({ verdict: 'deny', code: 'AUTHZ_CONDITION_FAILED', rule: 'own-tenant' });
    expect(r.trace).toContain('allow rule "own-tenant" matches but its conditions do not hold: claim tenant = globex, param tenantId = acme');
  });

  it('reads the headers as the sidecar does first: duplicates and overrides are refused or applied as spec.headers says', async () => {
    const p = await load(POLICY());
    const req = (headers: [string, string][], method = 'GET') => explainRequest(p, { method, path: '/api/orders', host: 'h', identity: who, headers });
    expect(await req([['authorization', 'Bearer a'], ['authorization', 'Bearer b']])).toMatchObject({ verdict: 'deny', code: 'HEADER_DUPLICATE', stage: 'request' });
    expect(await req([['x-http-method-override', 'DELETE']], 'POST')).toMatchObject({ verdict: 'deny', code: 'METHOD_OVERRIDE_NOT_ALLOWED', stage: 'request' });
    expect(await req([['x-original-url', '/admin']])).toMatchObject({ verdict: 'deny', code: 'PATH_OVERRIDE_NOT_ALLOWED', stage: 'request' });
    // apply: the overriding method is the one judged (here no operation of the API declares DELETE /orders).
    const apply = await load(POLICY('  headers: { methodOverride: { action: apply, methods: [DELETE] } }'));
    const r = await explainRequest(apply, { method: 'POST', path: '/api/orders', host: 'h', identity: who, headers: [['x-http-method-override', 'DELETE']] });
    expect(r).toMatchObject({ method: 'DELETE', verdict: 'deny', code: 'ROUTE_UNKNOWN', stage: 'validation' });
    expect(r.trace).toContain('method override applied (spec.headers.methodOverride: apply): POST is judged and forwarded as DELETE');
  });
});
