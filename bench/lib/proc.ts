/** Child processes of the benchmark and what Linux says about them (/proc): peak RSS, CPU time. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  /** Peak resident set size so far, MiB (VmHWM). */
  peakRssMiB(): number;
  /** Resident set size now, MiB (VmRSS). */
  rssMiB(): number;
  /** User + system CPU seconds so far. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

const CLK_TCK = 100;

/**
 * The children still running. A benchmark stopped by a signal (Ctrl-C, a kill) stops them
 * first: its finally blocks do not run then, and the targets it had started stayed behind,
 * loading the machine for whoever measured next.
 */
const live = new Set<ChildProcess>();
let signalsHandled = false;
function stopChildrenOnSignal(): void {
  if (signalsHandled) return;
  signalsHandled = true;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      const left = [...live];
      const exit = () => process.exit(sig === 'SIGINT' ? 130 : 143);
      if (left.length === 0) return exit();
      let pending = left.length;
      for (const c of left) {
        c.once('exit', () => --pending === 0 && exit());
        c.kill('SIGTERM');
      }
      setTimeout(() => {
        for (const c of left) c.kill('SIGKILL');
        exit();
      }, 5000).unref();
    });
  }
}

export function startChild(name: string, args: string[], env: Record<string, string>, log: (line: string) => void): Child {
  const proc = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  stopChildrenOnSignal();
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  let tail = '';
  const keep = (d: Buffer) => {
    tail = (tail + d.toString()).slice(-4000);
  };
  proc.stdout?.on('data', keep);
  if (process.env['BENCH_CHILD_OUTPUT']) proc.stdout?.on('data', (d: Buffer) => process.stderr.write(`[${name}] ${d.toString()}`));
  proc.stderr?.on('data', keep);
  proc.once('exit', (code, signal) => {
    if (code !== 0 && signal !== 'SIGTERM' && signal !== 'SIGKILL') log(`${name} exited (${code ?? signal}); last output:\n${tail}`);
  });
  const status = () => readFileSync(`/proc/${proc.pid}/status`, 'utf8');
  return {
    name,
    proc,
    peakRssMiB() {
      const m = /VmHWM:\s+(\d+) kB/.exec(status());
      return m ? Number(m[1]) / 1024 : NaN;
    },
    rssMiB() {
      const m = /VmRSS:\s+(\d+) kB/.exec(status());
      return m ? Number(m[1]) / 1024 : NaN;
    },
    cpuSeconds() {
      // Fields after the command name (which may contain spaces): utime is the 14th, stime the 15th field.
      const stat = readFileSync(`/proc/${proc.pid}/stat`, 'utf8');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
        setTimeout(() => proc.kill('SIGKILL'), 5000).unref();
      }),
  };
}

export function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

export async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      if ((err as { fatal?: boolean }).fatal) throw err;
      // not up yet
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
