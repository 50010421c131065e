import { describe, expect, it } from 'vitest';
import { compileAuthorization } from '../../src/authz/evaluate.ts';
import type { Identity } from '../../src/pipeline/types.ts';
import type { AuthorizationSpec } from '../../src/policy/document.ts';
import { validatePolicy } from '../../src/policy/load.ts';

function spec(authorization: unknown): AuthorizationSpec {
  const { document } = validatePolicy({ apiVersion: 'palisade.dev/v1', kind: 'Policy', metadata: { name: 't' }, spec: { authorization } }, 'test');
  return document.spec.authorization;
}

function id(o: Partial<Identity>): Identity {
  return { subject: 's', methods: ['jwt'], spiffeId: null, issuer: null, clientId: null, scopes: [], groups: [], claims: {}, tokenId: null, expiresAt: null, ...o };
}

const az = compileAuthorization(
  spec({
    roles: [
      { name: 'reader', subjects: [{ scope: 'orders:read' }, { spiffeId: 'spiffe://shop.local/ns/web/*' }] },
      { name: 'admin', subjects: [{ group: 'admins' }, { claim: { name: 'org.role', equals: 'owner' } }] },
    ],
    rules: [
      { id: 'no-internal', effect: 'deny', paths: ['/internal/**'] },
      { id: 'health', methods: ['GET'], paths: ['/healthz'], public: true },
      { id: 'tenant-orders', methods: ['GET'], paths: ['/tenants/{tenantId}/orders/{id}'], roles: ['reader'], when: [{ claim: 'tenant', equalsParam: 'tenantId' }] },
      { id: 'admin-api', paths: ['/admin/**'], roles: ['admin'], hosts: ['api.shop.local'] },
    ],
  }),
);

const req = (method: string, path: string, identity: Identity | null, host = 'api.shop.local:8443') => az.evaluate({ method, path, host, identity });

describe('authorization', () => {
  it('default deny', () => {
    expect(req('GET', '/nothing', id({}))).toMatchObject({ allow: false, code: 'AUTHZ_NO_MATCHING_RULE', rule: null });
  });

  it('public rules need no identity; others do', () => {
    expect(req('GET', '/healthz', null)).toMatchObject({ allow: true, rule: 'health' });
    expect(req('POST', '/healthz', null)).toMatchObject({ allow: false });
    expect(req('GET', '/tenants/t1/orders/9', null)).toMatchObject({ allow: false, code: 'AUTHZ_NO_MATCHING_RULE', rule: 'tenant-orders' });
  });

  it('tenant isolation: the claim must equal the path parameter', () => {
    const alice = id({ scopes: ['orders:read'], claims: { tenant: 't1' } });
    expect(req('GET', '/tenants/t1/orders/9', alice)).toMatchObject({ allow: true, rule: 'tenant-orders', params: { tenantId: 't1', id: '9' } });
    expect(req('GET', '/tenants/t2/orders/9', alice)).toMatchObject({ allow: false, code: 'AUTHZ_CONDITION_FAILED', rule: 'tenant-orders' });
  });

  it('roles from SPIFFE ID prefixes, groups and nested claims', () => {
    expect(req('GET', '/tenants/t1/orders/1', id({ spiffeId: 'spiffe://shop.local/ns/web/sa/front', claims: { tenant: 't1' } }))).toMatchObject({ allow: true });
    expect(req('GET', '/tenants/t1/orders/1', id({ spiffeId: 'spiffe://shop.local/ns/webx/sa/front', claims: { tenant: 't1' } }))).toMatchObject({ allow: false });
    expect(req('DELETE', '/admin/users/1', id({ groups: ['admins'] }))).toMatchObject({ allow: true, rule: 'admin-api' });
    expect(req('DELETE', '/admin/users/1', id({ claims: { org: { role: 'owner' } } }))).toMatchObject({ allow: true });
    expect(req('DELETE', '/admin/users/1', id({ claims: { 'org.role': 'viewer' } }))).toMatchObject({ allow: false });
  });

  it('an identity keeps its roles request after request, and another identity gets its own', () => {
    const reader = Object.freeze(id({ scopes: ['orders:read'], claims: Object.freeze({ tenant: 't1' }) }));
    const nobody = Object.freeze(id({ claims: Object.freeze({ tenant: 't1' }) }));
    for (let i = 0; i < 3; i++) {
      expect(req('GET', '/tenants/t1/orders/9', reader)).toMatchObject({ allow: true, rule: 'tenant-orders' });
      expect(req('GET', '/tenants/t1/orders/9', nobody)).toMatchObject({ allow: false, code: 'AUTHZ_NO_MATCHING_RULE' });
    }
    // The same identity under another policy is judged by that policy's roles.
    const other = compileAuthorization(spec({ roles: [{ name: 'reader', subjects: [{ subject: 's' }] }], rules: [{ id: 'r', paths: ['/tenants/**'], roles: ['reader'] }] }));
    expect(other.evaluate({ method: 'GET', path: '/tenants/t1/orders/9', host: 'h', identity: nobody })).toMatchObject({ allow: true, rule: 'r' });
    expect(req('GET', '/tenants/t1/orders/9', nobody)).toMatchObject({ allow: false });
  });

  it('hosts restrict rules (port ignored, case-insensitive)', () => {
    expect(req('GET', '/admin', id({ groups: ['admins'] }), 'API.SHOP.LOCAL')).toMatchObject({ allow: true });
    expect(req('GET', '/admin', id({ groups: ['admins'] }), 'other.local')).toMatchObject({ allow: false });
  });

  it('explicit deny wins, and matches case-insensitively', () => {
    const god = id({ groups: ['admins'], scopes: ['orders:read'] });
    expect(req('GET', '/internal/x', god)).toMatchObject({ allow: false, code: 'AUTHZ_DENY_RULE', rule: 'no-internal' });
    expect(req('GET', '/INTERNAL/x', god)).toMatchObject({ allow: false, code: 'AUTHZ_DENY_RULE' });
    expect(req('GET', '/internal', god)).toMatchObject({ allow: false, code: 'AUTHZ_DENY_RULE' });
  });

  it('allow rules match case-sensitively (grant no more than named)', () => {
    expect(req('GET', '/HEALTHZ', null)).toMatchObject({ allow: false });
  });

  it('explains its reasoning on request', () => {
    const r = az.evaluate({ method: 'GET', path: '/tenants/t2/orders/1', host: 'x', identity: id({ scopes: ['orders:read'], claims: { tenant: 't1' } }) }, true);
    expect(r.trace.join('\n')).toMatch(/roles \[reader\][\s\S]*conditions do not hold/);
  });

  it('refuses rules that name unknown roles or allow nobody, with the fix', () => {
    expect(() => compileAuthorization(spec({ rules: [{ id: 'x', paths: ['/a'], roles: ['ghost'] }] }))).toThrow(/names role "ghost".*define it/);
    expect(() => compileAuthorization(spec({ rules: [{ id: 'x', paths: ['/a'] }] }))).toThrow(/allows nobody/);
    expect(() => compileAuthorization(spec({ roles: [{ name: 'r', subjects: [{ subject: 'a' }] }], rules: [{ id: 'x', paths: ['/a/{id}'], roles: ['r'], when: [{ claim: 't', equalsParam: 'tenant' }] }] }))).toThrow(/equalsParam "tenant"/);
  });
});
