/**
 * Starts a test HTTP server on 127.0.0.1 (any free port) with an idempotent
 * stop that drops every connection, hanging responses included, so a test
 * server that simulates an outage can always be torn down.
 */
import type { Server } from 'node:http';

export async function listenOnLoopback(server: Server): Promise<{ port: number; stop: () => Promise<void> }> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  let stopping: Promise<void> | null = null;
  const stop = () => {
    stopping ??= new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
    return stopping;
  };
  return { port, stop };
}
