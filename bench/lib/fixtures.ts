/**
 * Everything the benchmark scenarios share, written to a temp directory:
 * a dev CA with server and client certificates, an RS256 key with its JWKS
 * and signed tokens, the OpenAPI document, the 1 KB request body, and the
 * full sidecar policy (mTLS + JWT, RBAC, schema validation, rate limits, a
 * 100,000-entry block list).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { createDevCa, writePem } from '../../src/tls/dev-ca.ts';

export const ISSUER = 'https://idp.bench.local/';
export const AUDIENCE = 'orders';
export const CLIENT_SPIFFE_ID = 'spiffe://bench.local/ns/shop/sa/web';

export interface Fixtures {
  readonly dir: string;
  readonly ca: string;
  readonly caFile: string;
  readonly server: { cert: string; key: string };
  readonly client: { cert: string; key: string };
  readonly jwksFile: string;
  readonly tokens: readonly string[];
  readonly body: string;
  readonly openapiFile: string;
}

/** An order of about 1 KiB that the OpenAPI schema accepts. */
export function orderBody(): string {
  const order = {
    customerEmail: 'ada.lovelace@example.com',
    currency: 'EUR',
    shipping: { name: 'Ada Lovelace', street: '12 St James Square', city: 'London', postcode: 'SW1Y 4JH', country: 'GB' },
    items: Array.from({ length: 6 }, (_, i) => ({ sku: `ABC-${1000 + i}`, quantity: i + 1, unitPrice: 9.99 + i, note: 'gift wrap, no invoice in the parcel' })),
    payment: { method: 'card', cardToken: 'tok_4f9a2c1e8b7d6a5f' },
    note: 'Leave with the neighbour if nobody is at home; ring twice please. The side gate is open on weekdays until six in the evening.',
    giftMessage: 'Happy birthday!',
  };
  return JSON.stringify(order);
}

const OPENAPI = {
  openapi: '3.0.3',
  info: { title: 'Orders', version: '1' },
  paths: {
    '/orders': {
      post: {
        operationId: 'createOrder',
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/NewOrder' } } } },
        responses: { '200': { description: 'ok' } },
      },
    },
  },
  components: {
    schemas: {
      NewOrder: {
        type: 'object',
        additionalProperties: false,
        required: ['customerEmail', 'currency', 'shipping', 'items', 'payment'],
        properties: {
          customerEmail: { type: 'string', format: 'email' },
          currency: { type: 'string', enum: ['EUR', 'USD', 'GBP'] },
          shipping: { $ref: '#/components/schemas/Address' },
          items: { type: 'array', minItems: 1, maxItems: 100, items: { $ref: '#/components/schemas/Item' } },
          payment: { oneOf: [{ $ref: '#/components/schemas/Card' }, { $ref: '#/components/schemas/Invoice' }] },
          note: { type: 'string', maxLength: 500, nullable: true },
          giftMessage: { type: 'string', maxLength: 200 },
        },
      },
      Address: {
        type: 'object',
        required: ['name', 'street', 'city', 'postcode', 'country'],
        properties: { name: { type: 'string', maxLength: 100 }, street: { type: 'string' }, city: { type: 'string' }, postcode: { type: 'string', maxLength: 12 }, country: { type: 'string', pattern: '^[A-Z]{2}$' } },
      },
      Item: {
        type: 'object',
        required: ['sku', 'quantity', 'unitPrice'],
        properties: { sku: { type: 'string', pattern: '^[A-Z]{3}-[0-9]{4}$' }, quantity: { type: 'integer', minimum: 1, maximum: 1000 }, unitPrice: { type: 'number', minimum: 0 }, note: { type: 'string', maxLength: 200 } },
      },
      Card: { type: 'object', additionalProperties: false, required: ['method', 'cardToken'], properties: { method: { enum: ['card'] }, cardToken: { type: 'string', minLength: 8 } } },
      Invoice: { type: 'object', additionalProperties: false, required: ['method', 'vatId'], properties: { method: { enum: ['invoice'] }, vatId: { type: 'string' } } },
    },
  },
};

export async function makeFixtures(dir: string, tokenCount = 8): Promise<Fixtures> {
  const ca = await createDevCa('Palisade Bench CA');
  const caFile = join(dir, 'ca.crt');
  writeFileSync(caFile, ca.cert);
  const server = writePem(dir, 'server', await ca.issue({ commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], usage: 'server' }));
  const clientPem = await ca.issue({ commonName: 'bench-client', spiffeId: CLIENT_SPIFFE_ID, usage: 'client' });
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const jwksFile = join(dir, 'jwks.json');
  writeFileSync(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'bench-1', alg: 'RS256', use: 'sig' }] }));
  const tokens = await Promise.all(
    Array.from({ length: tokenCount }, (_, i) =>
      new SignJWT({ scope: 'orders:write orders:read', client_id: 'bench-web' })
        .setProtectedHeader({ alg: 'RS256', kid: 'bench-1' })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setSubject(`user-${i}`)
        .setJti(`bench-token-${i}`)
        .setIssuedAt()
        .setExpirationTime('4h')
        .sign(privateKey),
    ),
  );
  const openapiFile = join(dir, 'openapi.json');
  writeFileSync(openapiFile, JSON.stringify(OPENAPI, null, 2));
  return { dir, ca: ca.cert, caFile, server, client: clientPem, jwksFile, tokens, body: orderBody(), openapiFile };
}

/** 100,000 block entries that never match the benchmark client: IPs, IPv4 and IPv6 networks, subjects, token ids. */
export function blockEntries(n = 100_000): object[] {
  const out: object[] = [];
  for (let i = 0; i < n; i++) {
    const r = i % 10;
    if (r < 6) out.push({ ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, reason: 'bench: scanner' });
    else if (r < 8) out.push({ cidr: `${20 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}.0/24`, reason: 'bench: hosting range' });
    else if (r < 9) out.push({ cidr: `2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::/64`, reason: 'bench: v6 range' });
    else out.push(i % 20 < 10 ? { subject: `banned-user-${i}`, reason: 'bench: fraud' } : { tokenId: `leaked-${i}`, reason: 'bench: leaked token' });
  }
  return out;
}

/** The full-policy sidecar's policy (JSON, which is YAML). */
export function fullPolicy(f: Fixtures, jwksUri: string, blocked = 100_000): string {
  return JSON.stringify({
    apiVersion: 'palisade.dev/v1',
    kind: 'Policy',
    metadata: { name: 'bench-full', version: '1' },
    spec: {
      authentication: {
        mtls: { trustDomains: ['bench.local'] },
        jwt: { issuers: [{ issuer: ISSUER, jwksUri, audiences: [AUDIENCE], algorithms: ['RS256'] }] },
        defaultRequire: { allOf: ['mtls', 'jwt'] },
      },
      authorization: {
        roles: [
          { name: 'orders-writer', subjects: [{ scope: 'orders:write' }] },
          { name: 'shop', subjects: [{ spiffeId: 'spiffe://bench.local/ns/shop/*' }] },
        ],
        rules: [
          { id: 'no-admin', effect: 'deny', paths: ['/admin/**'] },
          { id: 'create-order', methods: ['POST'], paths: ['/orders'], roles: ['orders-writer'] },
          { id: 'read-orders', methods: ['GET'], paths: ['/orders/**'], roles: ['shop'] },
        ],
      },
      rateLimits: {
        global: { rate: 1_000_000, burst: 1_000_000 },
        rules: [
          { id: 'per-client', key: ['identity'], rate: 100_000, burst: 100_000 },
          { id: 'per-ip-route', key: ['ip', 'route'], rate: 100_000, burst: 100_000, methods: ['POST'] },
        ],
      },
      blocklist: { entries: blockEntries(blocked) },
      validation: { openapi: { file: f.openapiFile } },
    },
  });
}

/** The sidecar with as little policy as possible: one public rule. */
export function minimalPolicy(): string {
  return JSON.stringify({
    apiVersion: 'palisade.dev/v1',
    kind: 'Policy',
    metadata: { name: 'bench-minimal', version: '1' },
    spec: {
      authentication: { defaultRequire: 'none' },
      authorization: { rules: [{ id: 'open', paths: ['/**'], public: true }] },
    },
  });
}
