/**
 * A server binary the tests start for real (Prometheus, Alertmanager): spawned with its output
 * kept for error messages, ready once GET /-/ready answers 200 (both serve it), stopped with
 * SIGTERM and, if it hangs, SIGKILL.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface ReadyServer {
  /** Everything the process printed so far. */
  logs(): string;
  /** SIGTERM, SIGKILL after 5 s; resolves once it exited. */
  stop(): Promise<void>;
}

export async function startReadyServer(name: string, bin: string, args: readonly string[], url: string, timeoutMs = 30_000): Promise<ReadyServer> {
  const out: string[] = [];
  const child: ChildProcess = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (b: Buffer) => out.push(b.toString()));
  child.stderr?.on('data', (b: Buffer) => out.push(b.toString()));
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited) throw new Error(`${name} exited:\n${out.join('')}`);
    try {
      const r = await fetch(`${url}/-/ready`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${name} not ready in ${timeoutMs / 1000} s:\n${out.join('')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    logs: () => out.join(''),
    async stop() {
      if (exited) return;
      const done = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await done;
      clearTimeout(t);
    },
  };
}
