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
