/**
 * What `palisade demo` tells its user in place of logs: ports already in use (one line naming
 * the port and the flag that changes it) and the fate of each policy edit (applied, or refused
 * with the reason, the previous policy staying in force), as readable lines.
 */
import { createServer } from 'node:net';
import type { CompiledPolicy } from '../policy/compiled.ts';
import type { SidecarObserver } from '../sidecar/observer.ts';

/** A port the demo needs is taken (or not ours to use). The message names it and its flag. */
export class DemoPortError extends Error {
  readonly port: number;
  readonly flag: string;
  constructor(port: number, flag: string, message: string) {
    super(message);
    this.name = 'DemoPortError';
    this.port = port;
    this.flag = flag;
  }
}

function probe(port: number, host: string): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => resolve(err));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(null)));
  });
}

/** One line for a listen error on a demo port, or null when the error is something else. */
export function portProblem(err: NodeJS.ErrnoException, port: number, flag: string, what: string): DemoPortError | null {
  if (err.code === 'EADDRINUSE') return new DemoPortError(port, flag, `port ${port} (${what}) is already in use on 127.0.0.1; stop what uses it (another palisade demo?) or choose another port with ${flag} N`);
  if (err.code === 'EACCES') return new DemoPortError(port, flag, `port ${port} (${what}) may not be used by this user; choose another port with ${flag} N (above 1023)`);
  return null;
}

/** Throws DemoPortError for the first port (0 = any, not checked) that cannot be listened on. */
export async function assertPortsFree(ports: readonly { port: number; flag: string; what: string }[]): Promise<void> {
  for (const p of ports) {
    if (p.port === 0) continue;
    const err = await probe(p.port, '127.0.0.1');
    const problem = err ? portProblem(err, p.port, p.flag, p.what) : null;
    if (problem) throw problem;
    if (err) throw err;
  }
}

const clock = () => new Date().toISOString().slice(11, 19);

/** An observer that says each policy reload after the first load: applied, or refused and why. */
export function policyEditLines(file: string, say: (line: string) => void): SidecarObserver {
  let loads = 0;
  return {
    onPolicyLoaded(p: CompiledPolicy) {
      if (loads++ === 0) return; // the start, already announced
      say(`[policy ${clock()}] edit applied: ${file} is now policy "${p.name}" version ${p.version} (hash ${p.hash.slice(0, 12)})`);
    },
    onPolicyRefused(err: Error) {
      const code = (err as { code?: string }).code ?? 'POLICY_INVALID';
      const reason = err.message.replace(/\n/g, '\n      ');
      say(`[policy ${clock()}] edit REFUSED, the previous policy stays in force: ${code}: ${reason}`);
    },
  };
}
