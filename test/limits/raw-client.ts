/** A raw mTLS socket to the sidecar, for requests an HTTP client library will not send (slow, chunked by hand). */
import { connect, type TLSSocket } from 'node:tls';
import type { Harness } from '../support/harness.ts';

export interface RawConnection {
  readonly socket: TLSSocket;
  /** Everything received so far. */
  received(): string;
  readonly closed: Promise<void>;
  /** Writes, waiting for drain; false once the connection is closed or a response has begun. */
  write(data: string | Buffer): Promise<boolean>;
}

export async function rawConnect(h: Harness, spiffeId: string): Promise<RawConnection> {
  const pem = await h.pki.client(spiffeId);
  const socket = connect({ host: '127.0.0.1', port: h.sidecar.tlsPort, ca: h.pki.ca.cert, cert: pem.cert, key: pem.key, servername: 'localhost' });
  await new Promise<void>((resolve, reject) => {
    socket.once('secureConnect', resolve);
    socket.once('error', reject);
  });
  let text = '';
  let isClosed = false;
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) =>
    socket.once('close', () => {
      isClosed = true;
      resolve();
    }),
  );
  return {
    socket,
    received: () => text,
    closed,
    async write(data) {
      if (isClosed || text.length > 0) return false;
      if (!socket.write(data)) {
        await Promise.race([new Promise((r) => socket.once('drain', r)), closed, new Promise((r) => socket.once('data', r))]);
      }
      return !isClosed && text.length === 0;
    },
  };
}

export const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
