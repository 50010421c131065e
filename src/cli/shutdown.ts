/**
 * How a long-running command (`palisade sidecar`, `palisade detector`) stops:
 * on the first SIGTERM or SIGINT it runs `close()` (the drain) under a grace
 * period; past the grace period the process exits 1.
 *
 * Once the drain is done the process should end by itself. If something still
 * holds the event loop (a library that did not let go: a kafkajs consumer that
 * restarted itself during its disconnect once kept a drained sidecar alive
 * until the grace period, then exit 1), it says what is still open and exits
 * with the drain's outcome after `lingerMs` rather than waiting out the grace
 * period: everything was already delivered or spooled.
 */
import type { Logger } from 'pino';

export interface ShutdownOptions {
  readonly logger: Logger;
  /** Longest the drain may take, milliseconds (PALISADE_SHUTDOWN_GRACE_MS). */
  readonly graceMs: number;
  /** What is logged when the signal arrives. */
  readonly message: string;
  /** The drain. */
  close(): Promise<void>;
  /** Wait after the drain for the process to end by itself, milliseconds. Default 2000. */
  readonly lingerMs?: number;
}

/** Resolves once the drain has finished (or failed, which is logged). */
export function runUntilSignal(o: ShutdownOptions): Promise<void> {
  const lingerMs = o.lingerMs ?? 2000;
  return new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      o.logger.info({ signal }, o.message);
      const grace = setTimeout(() => {
        o.logger.error({ graceMs: o.graceMs }, 'shutdown grace period over; exiting');
        process.exit(1);
      }, o.graceMs);
      grace.unref();
      const drained = () => {
        clearTimeout(grace);
        // unref: it fires only if something still keeps the process alive.
        setTimeout(() => {
          o.logger.warn({ resources: process.getActiveResourcesInfo(), lingerMs }, 'shutdown complete, but the process did not exit by itself; exiting');
          o.logger.flush();
          process.exit(); // with process.exitCode, which the command has set by now
        }, lingerMs).unref();
        resolve();
      };
      o.close().then(drained, (err: unknown) => {
        o.logger.error({ err }, 'shutdown failed');
        drained();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
