/**
 * The mTLS listener's TLS setup: one secure-context builder used both when the listener
 * starts and when rotated credentials are applied (they must never differ: a reload that
 * forgot requestCert would silently stop asking for client certificates), the refusal of
 * unverified peers, and the credential watcher.
 */
import type { Server } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { Settings } from '../config/settings.ts';
import { watchCredentials, type CredentialWatcher, type LoadedCredentials, type TlsFiles } from '../tls/credentials.ts';
import type { SidecarObserver } from './observer.ts';
import { peerVerifyReason, tlsErrorReason } from './tls-errors.ts';

export function tlsFilesOf(settings: Settings): TlsFiles {
  return { cert: settings.tlsCert, key: settings.tlsKey, ca: settings.tlsCa };
}

/** The secure-context options of the mTLS listener, at listen and at every reload. */
export function secureContextOptions(creds: LoadedCredentials, settings: Settings) {
  return {
    ...creds.options,
    requestCert: true,
    // Verification happens in OpenSSL either way; refusing in our own secureConnection
    // listener (guardTlsListener) lets us count *why* a peer was refused.
    rejectUnauthorized: false,
    minVersion: settings.tlsMinVersion,
  } as const;
}

type Notify = <K extends keyof SidecarObserver>(k: K, ...args: Parameters<NonNullable<SidecarObserver[K]>>) => void;

/**
 * Counts failed handshakes and cuts off peers whose certificate did not verify, then watches
 * the credential files and applies a valid new set to new handshakes (open connections keep theirs).
 */
export function guardTlsListener(server: Server, creds: LoadedCredentials, settings: Settings, logger: Logger, notify: Notify): CredentialWatcher {
  server.on('tlsClientError', (err: NodeJS.ErrnoException) => notify('onTlsHandshakeError', tlsErrorReason(err)));
  // Runs before the HTTP layer's own listener: a peer whose certificate did not
  // verify is cut off before a single byte of HTTP is read. A peer with no
  // certificate passes only when client certificates are optional.
  server.prependListener('secureConnection', (socket: TLSSocket) => {
    if (socket.authorized) return;
    const presented = Object.keys(socket.getPeerCertificate()).length > 0;
    if (!presented && !settings.requireClientCert) return;
    notify('onTlsHandshakeError', presented ? peerVerifyReason(String(socket.authorizationError ?? '')) : 'no_client_cert');
    socket.destroy();
  });
  return watchCredentials(
    tlsFilesOf(settings),
    creds,
    (next) => {
      (server as unknown as { setSecureContext(o: object): void }).setSecureContext(secureContextOptions(next, settings));
      logger.info({ digest: next.digest.slice(0, 16) }, 'TLS credentials reloaded');
      notify('onTlsReloaded');
    },
    (err) => {
      logger.warn({ err: err.message }, 'TLS credentials refused; previous ones stay');
      notify('onTlsRefused', err);
    },
  );
}
