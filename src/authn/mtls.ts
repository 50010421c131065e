/**
 * The mTLS peer as a credential. The TLS layer already verified the chain
 * against the trust bundle (src/tls/peer.ts gives only verified peers); here
 * the policy narrows who counts: trust domains, SPIFFE ID patterns, and
 * whether a certificate without a SPIFFE ID (identified by its subject) is
 * acceptable.
 */
import type { PeerCertificate } from '../pipeline/types.ts';
import type { AuthenticationSpec } from '../policy/document.ts';
import { trustDomainOf } from '../tls/peer.ts';
import { failure, type AuthnFailure } from './result.ts';

export interface PeerFacts {
  readonly ok: true;
  readonly spiffeId: string | null;
  /** SPIFFE ID, else the certificate subject DN. */
  readonly principal: string;
}

export type PeerCheck = PeerFacts | AuthnFailure | null;

export interface MtlsChecker {
  /** Judges a verified peer certificate (null: no certificate). Memoized per connection. */
  check(peer: PeerCertificate | null): PeerCheck;
  /** The same rules on bare facts, for `policy explain`. */
  judge(spiffeId: string | null, subject: string): PeerFacts | AuthnFailure;
}

export function compileMtls(spec: AuthenticationSpec['mtls']): MtlsChecker {
  const domains = spec.trustDomains.length > 0 ? new Set(spec.trustDomains.map((d) => d.toLowerCase())) : null;
  const exact = new Set(spec.spiffeIds.filter((p) => !p.endsWith('/*')));
  const prefixes = spec.spiffeIds.filter((p) => p.endsWith('/*')).map((p) => p.slice(0, -1));
  const idsRestricted = spec.spiffeIds.length > 0;
  const needSpiffe = spec.requireSpiffeId || domains !== null || idsRestricted;
  // The peer object is cached per TLS socket (tls/peer.ts): judge each connection once.
  const memo = new WeakMap<PeerCertificate, PeerFacts | AuthnFailure>();

  function judge(id: string | null, subject: string): PeerFacts | AuthnFailure {
    if (id === null) {
      if (needSpiffe) return failure('AUTHN_PEER_NOT_ALLOWED', 'the client certificate has no SPIFFE ID');
      return Object.freeze({ ok: true as const, spiffeId: null, principal: subject });
    }
    if (domains && !domains.has(trustDomainOf(id).toLowerCase())) return failure('AUTHN_PEER_NOT_ALLOWED', 'the client\'s SPIFFE trust domain is not accepted');
    if (idsRestricted && !exact.has(id) && !prefixes.some((p) => id.startsWith(p))) return failure('AUTHN_PEER_NOT_ALLOWED', 'the client\'s SPIFFE ID is not accepted');
    return Object.freeze({ ok: true as const, spiffeId: id, principal: id });
  }

  return {
    judge,
    check(peer) {
      if (peer === null) return null;
      let r = memo.get(peer);
      if (r === undefined) {
        r = judge(peer.spiffeId, peer.subject);
        memo.set(peer, r);
      }
      return r;
    },
  };
}
