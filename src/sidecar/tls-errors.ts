/** Maps a TLS handshake error to a short, bounded reason (a metric label). */
export function tlsErrorReason(err: NodeJS.ErrnoException & { reason?: string }): string {
  const text = `${err.code ?? ''} ${err.reason ?? ''} ${err.message}`.toLowerCase();
  if (text.includes('peer did not return a certificate') || text.includes('certificate required')) return 'no_client_cert';
  if (text.includes('certificate has expired') || text.includes('cert_has_expired')) return 'cert_expired';
  if (text.includes('unknown ca') || text.includes('unable to get local issuer') || text.includes('self signed') || text.includes('self-signed') || text.includes('unable to verify')) return 'unknown_ca';
  if (text.includes('not yet valid')) return 'cert_not_yet_valid';
  if (text.includes('version') || text.includes('protocol')) return 'protocol_version';
  if (text.includes('econnreset') || text.includes('socket hang up')) return 'connection_reset';
  if (text.includes('wrong version number') || text.includes('http request')) return 'not_tls';
  return 'other';
}

/** Maps OpenSSL's verification result for a presented client certificate to a bounded reason. */
export function peerVerifyReason(code: string): string {
  switch (code) {
    case 'CERT_HAS_EXPIRED':
      return 'cert_expired';
    case 'CERT_NOT_YET_VALID':
      return 'cert_not_yet_valid';
    case 'CERT_REVOKED':
      return 'cert_revoked';
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'CERT_SIGNATURE_FAILURE':
      return 'unknown_ca';
    default:
      return 'cert_invalid';
  }
}
