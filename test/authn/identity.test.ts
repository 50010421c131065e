import { describe, expect, it } from 'vitest';
import { buildIdentity, peerIdentity } from '../../src/authn/identity.ts';
import type { PeerFacts } from '../../src/authn/mtls.ts';
import type { TokenFacts } from '../../src/authn/result.ts';

const peer = (spiffeId: string): PeerFacts => ({ ok: true, spiffeId, principal: spiffeId });
const token = (over: Partial<TokenFacts> = {}): TokenFacts => ({
  ok: true,
  method: 'jwt',
  issuer: 'https://idp.example/',
  subject: 'user-1',
  clientId: 'web',
  scopes: ['orders:read'],
  groups: [],
  claims: { sub: 'user-1', scope: 'orders:read' },
  tokenId: 'jti-1',
  expiresAt: 2_000_000_000,
  ...over,
});

describe('buildIdentity', () => {
  it('combines the peer and the token: subject from the token, SPIFFE ID from the peer', () => {
    const id = buildIdentity(peer('spiffe://shop/web'), [token()]);
    expect(id).toEqual({
      subject: 'user-1',
      methods: ['mtls', 'jwt'],
      spiffeId: 'spiffe://shop/web',
      issuer: 'https://idp.example/',
      clientId: 'web',
      scopes: ['orders:read'],
      groups: [],
      claims: { sub: 'user-1', scope: 'orders:read' },
      tokenId: 'jti-1',
      expiresAt: 2_000_000_000,
    });
    expect(Object.isFrozen(id)).toBe(true);
  });

  it('gives the same Identity object for the same token on the same connection, a different one elsewhere', () => {
    // The token caches return one TokenFacts object per token and mtls one PeerFacts per connection.
    const t = token();
    const p1 = peer('spiffe://shop/web');
    const p2 = peer('spiffe://shop/web');
    const a = buildIdentity(p1, [t]);
    expect(buildIdentity(p1, [t])).toBe(a);
    const other = buildIdentity(p2, [t]);
    expect(other).not.toBe(a);
    expect(other).toEqual(a);
    const noPeer = buildIdentity(null, [t]);
    expect(noPeer).toBe(buildIdentity(null, [t]));
    expect(noPeer.methods).toEqual(['jwt']);
    expect(noPeer.spiffeId).toBeNull();
    const t2 = token({ subject: 'user-2', tokenId: 'jti-2' });
    expect(buildIdentity(p1, [t2]).subject).toBe('user-2');
  });

  it('merges several tokens (scopes and groups united, earliest expiry)', () => {
    const id = buildIdentity(null, [token({ expiresAt: 2_000_000_100 }), token({ method: 'introspection', subject: null, scopes: ['orders:write'], groups: ['staff'], expiresAt: 2_000_000_050 })]);
    expect(id.methods).toEqual(['jwt', 'introspection']);
    expect(id.scopes).toEqual(['orders:read', 'orders:write']);
    expect(id.groups).toEqual(['staff']);
    expect(id.expiresAt).toBe(2_000_000_050);
  });

  it('names an mTLS-only caller by its certificate, once per connection', () => {
    const p = peer('spiffe://shop/batch');
    expect(buildIdentity(p, [])).toBe(peerIdentity(p));
    expect(peerIdentity(p).methods).toEqual(['mtls']);
    expect(() => buildIdentity(null, [])).toThrow();
  });
});
