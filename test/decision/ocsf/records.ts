/**
 * Decision records for the OCSF tests that the core policy cannot produce
 * through the real sidecar yet (a JWT identity with claims, a trace id,
 * would_deny, odd client input). They are plain data in the record's own
 * shape, built like server.ts builds them; the real-sidecar records come
 * from test/support/harness.ts in the tests themselves.
 */
import type { DecisionRecord } from '../../../src/decision/record.ts';
import { uuidv7 } from '../../../src/util/ids.ts';

const T0 = Date.UTC(2025, 5, 1, 12, 0, 0);

export function jwtAllowRecord(over: Partial<DecisionRecord> = {}): DecisionRecord {
  return {
    id: uuidv7(T0),
    requestId: '3f2a9c1d0b7e4a56',
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    time: T0,
    durationMs: 3.482113,
    verdict: 'allow',
    decidedBy: 'forward',
    code: 'ALLOWED',
    rule: 'orders-read',
    wouldDeny: [{ stage: 'ratelimit', code: 'RATE_LIMITED', rule: 'per-client' }],
    identity: {
      subject: 'user-8842',
      methods: ['mtls', 'jwt'],
      spiffeId: 'spiffe://prod.example/ns/shop/sa/web',
      issuer: 'https://idp.example.com/',
      clientId: 'web-frontend',
      scopes: ['orders:read', 'profile'],
      groups: ['customers', 'beta'],
      claims: { sub: 'user-8842', tenant: 't-17', org: { id: 'o-9', tier: 'gold' }, roles: ['buyer'], email_verified: true },
      tokenId: 'a1b2c3d4-jti',
      expiresAt: Math.floor(T0 / 1000) + 900,
    },
    client: { ip: '10.1.4.23', port: 51544, forwardedFor: ['203.0.113.9', '10.1.0.1'] },
    server: { ip: '10.1.4.7', port: 8443 },
    tls: {
      protocol: 'TLSv1.3',
      cipher: 'TLS_AES_256_GCM_SHA384',
      sni: 'orders.shop.svc',
      peer: {
        spiffeId: 'spiffe://prod.example/ns/shop/sa/web',
        subject: 'CN=web',
        issuer: 'CN=Prod Workload CA,O=Example',
        serialNumber: '5A1F03C2D4E9B7A1',
        fingerprint256: '3A:9F:11:C0:7B:22:5E:D4:90:AA:1B:6C:73:E8:0F:4D:2C:91:B5:06:E7:38:AD:54:1F:C2:99:60:08:7D:3E:B1',
        validFrom: 'May 31 00:00:00 2025 GMT',
        validTo: 'Jun  1 00:00:00 2025 GMT',
      },
    },
    request: {
      method: 'GET',
      path: '/tenants/t-17/orders/991',
      host: 'orders.shop.svc:8443',
      scheme: 'https',
      httpVersion: '1.1',
      userAgent: 'shop-web/2.4 (+node)',
      contentType: null,
      route: '/tenants/{tenantId}/orders/{id}',
      params: { tenantId: 't-17', id: '991' },
      bytesIn: 0,
    },
    response: { status: 200, bytesOut: 912 },
    stages: [
      { stage: 'authn', us: 41.2, outcome: 'continue' },
      { stage: 'ratelimit', us: 3.1, outcome: 'would_deny' },
      { stage: 'authz', us: 6.75, outcome: 'continue' },
    ],
    upstreamMs: 2.91,
    policy: { name: 'shop', version: '2025-06-01', hash: 'c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123456789', keyId: '90fc66c516105e79' },
    detail: null,
    ...over,
  };
}

/** A client-credentials token (sub = client id) refused by the block list. */
export function blockedServiceRecord(): DecisionRecord {
  const base = jwtAllowRecord();
  return {
    ...base,
    id: uuidv7(T0 + 5),
    requestId: '77aa0c1d0b7e4a99',
    traceId: null,
    verdict: 'deny',
    decidedBy: 'blocklist',
    code: 'BLOCKED',
    rule: 'detector:burst:9f1c',
    wouldDeny: [],
    identity: { ...(base.identity as NonNullable<DecisionRecord['identity']>), subject: 'batch-exporter', clientId: 'batch-exporter', methods: ['jwt'], spiffeId: null, groups: [], tokenId: null },
    tls: { ...(base.tls as NonNullable<DecisionRecord['tls']>), peer: null },
    request: { ...base.request, method: 'POST', contentType: 'application/json', bytesIn: 734, route: null, params: null, path: '/exports' },
    response: { status: 403, bytesOut: 301 },
    stages: [{ stage: 'blocklist', us: 1.4, outcome: 'deny' }],
    upstreamMs: null,
    detail: 'client is blocked until 2025-06-01T12:15:00Z',
  };
}

/** Values that do not fit their OCSF types: they must survive via unmapped.palisade.exact. */
export function oddRecord(): DecisionRecord {
  const base = jwtAllowRecord();
  return {
    ...base,
    id: uuidv7(T0 + 9),
    traceId: null,
    verdict: 'deny',
    decidedBy: 'request',
    code: 'PATH_INVALID',
    rule: null,
    wouldDeny: [],
    identity: { ...(base.identity as NonNullable<DecisionRecord['identity']>), expiresAt: 1748779200.5, tokenId: null, issuer: null, clientId: null },
    client: { ip: '', port: 4711, forwardedFor: ['unknown', '198.51.100.4', '_hidden'] },
    server: { ip: '::1', port: 8443 },
    tls: { protocol: 'TLSv1.2', cipher: null, sni: null, peer: { ...(base.tls?.peer as NonNullable<NonNullable<DecisionRecord['tls']>['peer']>), validFrom: '2025-05-31', fingerprint256: 'not-a-fingerprint', spiffeId: null } },
    request: { ...base.request, method: 'PROPFIND', host: 'Orders.Example:08443', path: '/a/%2e%2e/b', httpVersion: '2.0', userAgent: '', route: null, params: null },
    response: { status: 400, bytesOut: 0 },
    stages: [],
    upstreamMs: null,
    policy: null,
    detail: 'encoded dot segment',
  };
}

/** TLS facts without a protocol (OCSF requires tls.version): kept whole in unmapped. */
export function noProtocolRecord(): DecisionRecord {
  const base = jwtAllowRecord();
  return { ...base, id: uuidv7(T0 + 11), traceId: null, identity: null, tls: { protocol: null, cipher: null, sni: 'x', peer: null }, request: { ...base.request, host: '[2001:db8::5]:8443' }, client: { ip: '2001:db8::9', port: 1, forwardedFor: [] } };
}

/** The record server.ts builds for an unparseable request on a socket that is already gone. */
export function brokenSocketRecord(): DecisionRecord {
  return {
    id: uuidv7(T0 + 13),
    requestId: '0000aaaabbbbcccc',
    traceId: null,
    time: T0 + 13,
    durationMs: 0,
    verdict: 'deny',
    decidedBy: 'request',
    code: 'REQUEST_MALFORMED',
    rule: null,
    wouldDeny: [],
    identity: null,
    client: { ip: '', port: 0, forwardedFor: [] },
    server: { ip: '', port: 0 },
    tls: null,
    request: { method: '', path: '', host: '', scheme: 'http', httpVersion: '', userAgent: null, contentType: null, route: null, params: null, bytesIn: 0 },
    response: { status: 400, bytesOut: 0 },
    stages: [],
    upstreamMs: null,
    policy: null,
    detail: 'HPE_INVALID_METHOD',
  };
}

export const SYNTHETIC: readonly [string, () => DecisionRecord][] = [
  ['JWT + mTLS allow with trace and would_deny', jwtAllowRecord],
  ['block-list deny of a service token', blockedServiceRecord],
  ['odd values (non-IP XFF, odd Host, fractional exp, unknown method)', oddRecord],
  ['TLS without protocol, IPv6 host', noProtocolRecord],
  ['unparseable request, socket gone', brokenSocketRecord],
];

/**
 * The benchmark's full-policy request (bench/lib/fixtures.ts): POST /orders
 * with a ~1 KB JSON body over keep-alive mTLS, an RS256 JWT with the
 * fixtures' claims, every stage of the full policy timed, allowed. What
 * docs/events.md and bench/ocsf-encode.ts size the detail levels on.
 */
export function benchAllowRecord(i = 0): DecisionRecord {
  const iat = Math.floor(T0 / 1000) - 60;
  return {
    // A fixed UUIDv7 (time T0, counter i) so docs/events.md can show this exact event.
    id: `01972b5c-ee00-7000-8000-${String(i).padStart(12, '0')}`,
    requestId: `b7c41f0e9a2d${String(i).padStart(4, '0')}`,
    traceId: null,
    time: T0 + i,
    durationMs: 0.412731,
    verdict: 'allow',
    decidedBy: 'forward',
    code: 'ALLOWED',
    rule: 'create-order',
    wouldDeny: [],
    identity: {
      subject: `user-${i % 8}`,
      methods: ['mtls', 'jwt'],
      spiffeId: 'spiffe://bench.local/ns/shop/sa/web',
      issuer: 'https://idp.bench.local/',
      clientId: 'bench-web',
      scopes: ['orders:write', 'orders:read'],
      groups: [],
      claims: { scope: 'orders:write orders:read', client_id: 'bench-web', iss: 'https://idp.bench.local/', aud: 'orders', sub: `user-${i % 8}`, jti: `bench-token-${i % 8}`, iat, exp: iat + 4 * 3600 },
      tokenId: `bench-token-${i % 8}`,
      expiresAt: iat + 4 * 3600,
    },
    client: { ip: '127.0.0.1', port: 40000 + (i % 32), forwardedFor: [] },
    server: { ip: '127.0.0.1', port: 8443 },
    tls: {
      protocol: 'TLSv1.3',
      cipher: 'TLS_AES_256_GCM_SHA384',
      sni: 'localhost',
      peer: {
        spiffeId: 'spiffe://bench.local/ns/shop/sa/web',
        subject: 'CN=bench-client',
        issuer: 'CN=Palisade Bench CA',
        serialNumber: '6B0D3E8F21A4C7D9',
        fingerprint256: 'C4:1E:77:02:9B:5A:D3:68:F0:1C:4E:A9:3B:72:85:D6:0F:E2:19:B4:6C:38:A1:57:DE:90:2F:C6:4B:81:7A:05',
        validFrom: 'May 31 00:00:00 2025 GMT',
        validTo: 'May 31 00:00:00 2026 GMT',
      },
    },
    request: {
      method: 'POST',
      path: '/orders',
      host: 'localhost:8443',
      scheme: 'https',
      httpVersion: '1.1',
      userAgent: null,
      contentType: 'application/json',
      route: '/orders',
      params: {},
      bytesIn: 1043,
    },
    response: { status: 201, bytesOut: 64 },
    stages: [
      { stage: 'blocklist', us: 0.6, outcome: 'continue' },
      { stage: 'authn', us: 4.2, outcome: 'continue' },
      { stage: 'blocklist', us: 0.7, outcome: 'continue' },
      { stage: 'ratelimit', us: 3.9, outcome: 'continue' },
      { stage: 'authz', us: 1.1, outcome: 'continue' },
      { stage: 'validation', us: 20.6, outcome: 'continue' },
    ],
    upstreamMs: 0.231,
    policy: { name: 'bench-full', version: '1', hash: '9d4e1f0c2b7a65e3d8c1f4a09b2e7d6c5a3f18e0d9c2b4a7f6e5d1c0b9a8e7f6' },
    detail: null,
  };
}
