/** The ECS projection: the same facts as the OCSF event, named the ECS way. */
import { describe, expect, it } from 'vitest';
import { ECS_VERSION, toEcs } from '../../../src/decision/ocsf/ecs.ts';
import { blockedServiceRecord, brokenSocketRecord, jwtAllowRecord, oddRecord } from './records.ts';

describe('ECS projection of a decision', () => {
  it('maps an allowed JWT + mTLS request to ECS fields', () => {
    const r = jwtAllowRecord();
    const d = toEcs(r) as Record<string, any>;
    expect(d['@timestamp']).toBe('2025-06-01T12:00:00.000Z');
    expect(d['ecs']).toEqual({ version: ECS_VERSION });
    expect(d['event']).toMatchObject({ id: r.id, kind: 'event', category: ['network', 'web'], type: ['access', 'allowed'], outcome: 'success', code: 'ALLOWED', action: 'allowed', duration: 3_482_113, dataset: 'palisade.decisions', start: '2025-06-01T12:00:00.000Z', end: '2025-06-01T12:00:00.003Z' });
    expect(d['source']).toEqual({ ip: '10.1.4.23', port: 51544, address: '10.1.4.23' });
    expect(d['destination']).toEqual({ ip: '10.1.4.7', port: 8443, address: '10.1.4.7' });
    expect(d['network']).toEqual({ transport: 'tcp', protocol: 'http', type: 'ipv4', forwarded_ip: '203.0.113.9' });
    expect(d['http']).toEqual({ request: { id: r.requestId, method: 'GET', body: { bytes: 0 } }, response: { status_code: 200, bytes: 912 }, version: '1.1' });
    expect(d['url']).toEqual({ scheme: 'https', domain: 'orders.shop.svc', port: 8443, path: '/tenants/t-17/orders/991', original: 'https://orders.shop.svc:8443/tenants/t-17/orders/991', full: 'https://orders.shop.svc:8443/tenants/t-17/orders/991' });
    expect(d['user_agent']).toEqual({ original: 'shop-web/2.4 (+node)' });
    expect(d['user']).toEqual({ id: 'user-8842', name: 'user-8842', domain: 'https://idp.example.com/' });
    expect(d['tls']).toMatchObject({ version: '1.3', version_protocol: 'tls', cipher: 'TLS_AES_256_GCM_SHA384', client: { server_name: 'orders.shop.svc', x509: { serial_number: '5A1F03C2D4E9B7A1', not_before: '2025-05-31T00:00:00.000Z', not_after: '2025-06-01T00:00:00.000Z', alternative_names: ['spiffe://prod.example/ns/shop/sa/web'] }, hash: { sha256: '3A9F11C07B225ED490AA1B6C73E80F4D2C91B506E738AD541FC29960087D3EB1' } } });
    expect(d['trace']).toEqual({ id: r.traceId });
    expect(d['rule']).toEqual({ id: 'orders-read', name: 'orders-read', ruleset: 'shop', version: '2025-06-01' });
    expect(d['palisade']).toMatchObject({ stage: 'forward', route: '/tenants/{tenantId}/orders/{id}', would_deny: r.wouldDeny });
    // Claims stay out of the ECS document (it is not the replay format).
    expect(JSON.stringify(d)).not.toContain('email_verified');
  });

  it('a block-list hit is an ECS alert; odd and missing values are left out, not invented', () => {
    expect(toEcs(blockedServiceRecord())['event']).toMatchObject({ kind: 'alert', type: ['access', 'denied'], outcome: 'failure', code: 'BLOCKED', action: 'blocked', category: ['network', 'web'] });
    const odd = toEcs(oddRecord()) as Record<string, any>;
    expect(odd['source']).toBeUndefined();
    expect(odd['network']['forwarded_ip']).toBe('198.51.100.4');
    expect(odd['tls']['client']['hash']).toBeUndefined();
    expect(odd['tls']['client']['x509']['not_before']).toBeUndefined();
    const broken = toEcs(brokenSocketRecord()) as Record<string, any>;
    expect(broken['url']).toBeUndefined();
    expect(broken['http']['request']['method']).toBeUndefined();
    expect(broken['destination']).toBeUndefined();
  });
});
