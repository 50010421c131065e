import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startHarness, until, type Harness } from '../support/harness.ts';

const ORDERS = fileURLToPath(new URL('./fixtures/orders-3.0.yaml', import.meta.url));
const CATALOG = fileURLToPath(new URL('./fixtures/catalog-3.1.json', import.meta.url));
const PEER = 'spiffe://test.local/ns/shop/sa/web';

const POLICY = `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: validation-test, version: "1" }
spec:
  authorization:
    rules:
      - id: open
        paths: [/**]
        public: true
  validation:
    openapi:
      file: ${ORDERS}
      basePath: /api
    responses:
      audit: true
`;

const ORDER_ID = '0f8fad5b-d9cb-469f-a165-70867728950e';
const valid = {
  customerEmail: 'ada@example.com',
  items: [{ sku: 'ABC-1234', quantity: 2 }],
  payment: { method: 'card', cardToken: 'tok_12345678' },
  note: null,
  deliverOn: '2026-12-01',
};

describe('schema validation against an OpenAPI 3.0 document ($ref, oneOf, formats, path params)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(POLICY);
  });
  afterAll(async () => {
    await h?.close();
  });
  const post = async (body: unknown, headers: Record<string, string> = {}) =>
    send(await h.client(PEER), `${h.base}/api/orders`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });

  it('forwards a valid body unchanged', async () => {
    const r = await post(valid);
    expect(r.status).toBe(200);
    const seen = h.upstream.requests.find((x) => x.method === 'POST' && x.url === '/api/orders');
    expect(JSON.parse(seen?.body ?? 'null')).toEqual(valid);
  });

  it.each([
    ['a missing required field', { ...valid, customerEmail: undefined }, [{ pointer: '/body/customerEmail', rule: 'required' }]],
    ['a bad email format', { ...valid, customerEmail: 'not-an-email' }, [{ pointer: '/body/customerEmail', rule: 'format' }]],
    ['a bad date format', { ...valid, deliverOn: '2026-13-45' }, [{ pointer: '/body/deliverOn', rule: 'format' }]],
    ['a pattern through a $ref', { ...valid, items: [{ sku: 'abc', quantity: 1 }] }, [{ pointer: '/body/items/0/sku', rule: 'pattern' }]],
    ['an exclusive maximum (3.0 boolean form)', { ...valid, items: [{ sku: 'ABC-1234', quantity: 1000 }] }, [{ pointer: '/body/items/0/quantity', rule: 'exclusiveMaximum' }]],
    ['a payment matching no oneOf branch', { ...valid, payment: { method: 'card', vatId: 'DE123' } }, [{ pointer: '/body/payment', rule: 'oneOf' }]],
    ['an undeclared field', { ...valid, isAdmin: true }, [{ pointer: '/body/isAdmin', rule: 'additionalProperties' }]],
  ])('refuses %s with the pointer and the rule, never the value', async (_name, body, expected) => {
    const n = h.upstream.requests.length;
    const r = await post(body);
    expect(r.status).toBe(400);
    expect(String(r.headers['content-type'])).toMatch(/^application\/problem\+json/);
    expect(r.json).toMatchObject({ code: 'SCHEMA_VIOLATION' });
    const errors = r.json?.['errors'] as { pointer: string; rule: string; message: string }[];
    for (const e of expected) expect(errors).toContainEqual(expect.objectContaining(e));
    for (const secret of ['not-an-email', '2026-13-45', 'DE123']) expect(r.text).not.toContain(secret);
    expect(h.upstream.requests.length).toBe(n);
  });

  it('accepts null for a nullable field and either oneOf branch', async () => {
    expect((await post({ ...valid, note: null, payment: { method: 'invoice', vatId: 'DE123456' } })).status).toBe(200);
  });

  it('checks path parameters and required headers', async () => {
    const c = await h.client(PEER);
    const bad = await send(c, `${h.base}/api/orders/not-a-uuid`, { headers: { 'x-api-version': 'v1' } });
    expect(bad.status).toBe(400);
    expect(bad.json?.['errors']).toContainEqual(expect.objectContaining({ pointer: '/path/orderId', rule: 'format' }));
    const noHeader = await send(c, `${h.base}/api/orders/${ORDER_ID}`);
    expect(noHeader.json?.['errors']).toEqual([{ pointer: '/headers/x-api-version', rule: 'required', message: 'is required' }]);
    const wrongHeader = await send(c, `${h.base}/api/orders/${ORDER_ID}`, { headers: { 'x-api-version': 'v3' } });
    expect(wrongHeader.json?.['errors']).toContainEqual(expect.objectContaining({ pointer: '/headers/x-api-version', rule: 'pattern' }));
    expect((await send(c, `${h.base}/api/orders/${ORDER_ID}`, { headers: { 'x-api-version': 'v2' } })).status).toBe(200);
  });

  it('checks query parameters (coerced integers, comma-separated arrays)', async () => {
    const c = await h.client(PEER);
    expect((await send(c, `${h.base}/api/orders?limit=10&status=open,shipped`)).status).toBe(200);
    const r = await send(c, `${h.base}/api/orders?limit=0&status=open,lost`);
    expect(r.status).toBe(400);
    expect(r.json?.['errors']).toEqual(
      expect.arrayContaining([expect.objectContaining({ pointer: '/query/limit', rule: 'minimum' }), expect.objectContaining({ pointer: '/query/status/1', rule: 'enum' })]),
    );
  });

  it('denies unknown routes and undeclared methods by default (404 ROUTE_UNKNOWN)', async () => {
    const c = await h.client(PEER);
    const r = await send(c, `${h.base}/api/invoices`);
    expect(r.status).toBe(404);
    expect(r.json).toMatchObject({ code: 'ROUTE_UNKNOWN', detail: 'no operation of the API matches this method and path' });
    const m = await send(c, `${h.base}/api/orders/${ORDER_ID}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{}' });
    // Whether the path exists for another method is the operators' to know (the event), not a prober's.
    expect(m.json).toMatchObject({ code: 'ROUTE_UNKNOWN', detail: 'no operation of the API matches this method and path' });
    await until(() => h.decisions.some((d) => d.requestId === m.json?.['request_id']));
    expect(h.decisions.find((d) => d.requestId === m.json?.['request_id'])?.detail).toBe('the API declares no PUT operation for this path');
  });

  it('refuses content types the operation does not declare, and bodies it does not take', async () => {
    const r = await post('customerEmail=a@b.c', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(r.status).toBe(415);
    expect(r.json).toMatchObject({ code: 'CONTENT_TYPE_NOT_ALLOWED', detail: 'the content type is not declared for this operation; declared: application/json' });
    const c = await h.client(PEER);
    const d = await send(c, `${h.base}/api/orders/${ORDER_ID}`, { method: 'DELETE', headers: { 'content-type': 'application/json' }, body: '{"why":"x"}' });
    expect(d.json?.['errors']).toEqual([{ pointer: '/body', rule: 'absent', message: 'the operation declares no request body' }]);
    const empty = await send(c, `${h.base}/api/orders`, { method: 'POST' });
    expect(empty.json?.['errors']).toEqual([{ pointer: '/body', rule: 'required', message: 'a request body is required' }]);
  });

  it('refuses malformed JSON with BODY_MALFORMED', async () => {
    const r = await post('{"customerEmail": ');
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ code: 'BODY_MALFORMED' });
  });

  it('checks responses in audit mode only: an undeclared field is recorded as would_deny, never blocked', async () => {
    h.upstream.handler = (req, _body, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url?.startsWith('/api/orders/')) res.end(JSON.stringify({ id: ORDER_ID, status: 'open', internalCost: 3.2 }));
      else res.end(JSON.stringify([{ id: ORDER_ID, status: 'open' }]));
    };
    try {
      const c = await h.client(PEER);
      const leaky = await send(c, `${h.base}/api/orders/${ORDER_ID}`, { headers: { 'x-api-version': 'v1' } });
      expect(leaky.status).toBe(200);
      expect(leaky.json).toMatchObject({ internalCost: 3.2 });
      const fine = await send(c, `${h.base}/api/orders`);
      expect(fine.status).toBe(200);
      await until(() => h.decisions.filter((d) => d.request.route?.startsWith('/api/orders') && d.verdict === 'allow').length >= 2);
      const leakyDecision = h.decisions.filter((d) => d.request.path === `/api/orders/${ORDER_ID}`).at(-1);
      expect(leakyDecision).toMatchObject({ verdict: 'allow', wouldDeny: [{ stage: 'validation', code: 'RESPONSE_SCHEMA_VIOLATION', rule: 'getOrder' }] });
      expect(h.decisions.filter((d) => d.request.path === '/api/orders' && d.request.method === 'GET').at(-1)?.wouldDeny).toEqual([]);
    } finally {
      h.upstream.handler = (req, _b, res) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ ok: true, method: req.method, url: req.url }));
      };
    }
  });
});

const POLICY_31 = `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: validation-31, version: "1" }
spec:
  authorization:
    rules:
      - id: open
        paths: [/**]
        public: true
  validation:
    unknownRoutes: allow
    openapi:
      file: ${CATALOG}
    routes:
      - id: create-review
        method: POST
        path: /reviews/{productId}
        params:
          type: object
          properties: { productId: { type: integer, minimum: 1 } }
        body:
          required: true
          content:
            application/json:
              type: object
              required: [stars]
              additionalProperties: false
              properties:
                stars: { type: integer, minimum: 1, maximum: 5 }
                text: { type: string, maxLength: 500 }
`;

describe('OpenAPI 3.1 and inline JSON Schemas', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(POLICY_31);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('matches partial-segment path templates and 2020-12 keywords', async () => {
    const c = await h.client(PEER);
    expect((await send(c, `${h.base}/products/ABC-1234.csv`)).status).toBe(200);
    const r = await send(c, `${h.base}/products/ABC-1234.xml`);
    expect(r.json?.['errors']).toContainEqual(expect.objectContaining({ pointer: '/path/format', rule: 'enum' }));
    const put = (ct: string, body: string) => send(c, `${h.base}/products`, { method: 'PUT', headers: { 'content-type': ct }, body });
    expect((await put('application/merge-patch+json', JSON.stringify({ sku: 'x', price: 2, tags: ['primary', 'sale'] }))).status).toBe(200);
    expect((await put('application/merge-patch+json', JSON.stringify({ sku: 'x', price: 2, tags: null }))).status).toBe(200);
    const bad = await put('application/vnd.api+json', JSON.stringify({ sku: 'x', price: 0, tags: ['sale'] }));
    expect(bad.json?.['errors']).toEqual(
      expect.arrayContaining([expect.objectContaining({ pointer: '/body/price', rule: 'exclusiveMinimum' }), expect.objectContaining({ pointer: '/body/tags/0', rule: 'const' })]),
    );
    // Form bodies are parsed and coerced before the same schema.
    expect((await put('application/x-www-form-urlencoded', 'sku=x&price=3.5')).status).toBe(200);
    expect((await put('application/x-www-form-urlencoded', 'sku=x&price=free')).json?.['errors']).toContainEqual(expect.objectContaining({ pointer: '/body/price', rule: 'type' }));
  });

  it('validates inline routes (params coerced, body strict) and lets unknown routes through when told to', async () => {
    const c = await h.client(PEER);
    const ok = await send(c, `${h.base}/reviews/42`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"stars":5,"text":"great"}' });
    expect(ok.status).toBe(200);
    const bad = await send(c, `${h.base}/reviews/zero`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"stars":9}' });
    expect(bad.status).toBe(400);
    // A request already refused for its parameters is refused without reading its body.
    expect(bad.json?.['errors']).toEqual([{ pointer: '/path/productId', rule: 'type', message: 'must be integer' }]);
    const badBody = await send(c, `${h.base}/reviews/7`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"stars":9,"spam":1}' });
    expect(badBody.json?.['errors']).toEqual([
      { pointer: '/body/spam', rule: 'additionalProperties', message: 'is not allowed by the schema' },
      { pointer: '/body/stars', rule: 'maximum', message: 'must be <= 5' },
    ]);
    expect((await send(c, `${h.base}/anything/else`)).status).toBe(200);
  });

  it('refuses a policy whose inline schema has a typo, naming the route and the keyword', async () => {
    h.writePolicy(POLICY_31.replace('maximum: 5', 'maximun: 5'));
    const err = await h.sidecar.reloadPolicy();
    expect(err?.message).toMatch(/spec\.validation\.routes\[0\]\.body\.content\["application\/json"\]: the schema does not compile: strict mode: unknown keyword: "maximun"/);
    h.writePolicy(POLICY_31.replace(CATALOG, '/nonexistent/openapi.yaml'));
    expect((await h.sidecar.reloadPolicy())?.message).toMatch(/spec\.validation\.openapi\.file \("\/nonexistent\/openapi\.yaml"\): cannot read .*ENOENT; the path is relative to the policy file/);
  });
});
