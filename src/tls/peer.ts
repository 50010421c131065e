/**
 * Reads the mTLS peer's identity from a verified TLS socket. The SPIFFE ID is
 * the certificate's URI SAN with the spiffe scheme (X.509-SVID: exactly one);
 * without one, the subject DN stands in. Cached per socket: keep-alive
 * connections send many requests and the certificate cannot change mid-connection.
 */
import type { TLSSocket } from 'node:tls';
import type { PeerCertificate, TlsFacts } from '../pipeline/types.ts';

const cache = new WeakMap<TLSSocket, TlsFacts>();

/** Extracts spiffe:// URIs from Node's subjectaltname string ("URI:spiffe://a/b, DNS:x"). */
export function spiffeIdsFromSan(san: string | undefined): string[] {
  if (!san) return [];
  const ids: string[] = [];
  for (const part of san.split(', ')) {
    if (part.startsWith('URI:spiffe://')) ids.push(part.slice(4));
  }
  return ids;
}

/** True for a syntactically valid SPIFFE ID (spiffe://trust-domain/path). */
export function isSpiffeId(id: string): boolean {
  return /^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*$/.test(id);
}

export function trustDomainOf(spiffeId: string): string {
  return spiffeId.slice('spiffe://'.length).split('/')[0] ?? '';
}

function dn(o: Record<string, unknown> | undefined): string {
  if (!o) return '';
  return Object.entries(o)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : String(v)}`)
    .join(',');
}

export function tlsFactsOf(socket: TLSSocket): TlsFacts {
  const cached = cache.get(socket);
  if (cached) return cached;
  let peer: PeerCertificate | null = null;
  if (socket.authorized) {
    const cert = socket.getPeerCertificate(false);
    if (cert && Object.keys(cert).length > 0) {
      const ids = spiffeIdsFromSan(cert.subjectaltname).filter(isSpiffeId);
      peer = {
        // An SVID has exactly one SPIFFE ID; a certificate with several is ambiguous and gets none.
        spiffeId: ids.length === 1 ? (ids[0] as string) : null,
        subject: dn(cert.subject as unknown as Record<string, unknown>),
        issuer: dn(cert.issuer as unknown as Record<string, unknown>),
        serialNumber: cert.serialNumber,
        fingerprint256: cert.fingerprint256,
        validFrom: cert.valid_from,
        validTo: cert.valid_to,
      };
    }
  }
  const facts: TlsFacts = {
    protocol: socket.getProtocol() ?? null,
    cipher: socket.getCipher()?.name ?? null,
    sni: (socket as TLSSocket & { servername?: string | false }).servername || null,
    peer,
  };
  cache.set(socket, facts);
  return facts;
}
