/**
 * The real `palisade sidecar` process (node src/cli/main.ts sidecar) for tests and benchmarks:
 * started with the given PALISADE_* environment, ready once it logs "sidecar listening"
 * (PALISADE_LOG_LEVEL must be info or lower), with its stderr lines kept.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { createPki, loopbackSidecarEnv, startUpstream, until, type Pki, type Upstream } from './harness.ts';

export interface SidecarProcess {
  readonly child: ChildProcess;
  /** https://127.0.0.1:<tls port> */
  readonly base: string;
  /** Resolves once the process has exited and its stdout and stderr are read to the end. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** stderr lines (pino JSON), the first 10000. */
  readonly log: string[];
  /** Everything written to stdout so far (kept only with `captureStdout`). */
  stdout(): string;
}

export async function startSidecarProcess(env: Record<string, string>, timeoutMs = 30_000, o: { captureStdout?: boolean } = {}): Promise<SidecarProcess> {
  const child = spawn(process.execPath, ['src/cli/main.ts', 'sidecar'], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', o.captureStdout ? 'pipe' : 'ignore', 'pipe'] });
  const out: Buffer[] = [];
  child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
  const log: string[] = [];
  // 'close', not 'exit': it comes once stdout and stderr are read to their end too, so what the
  // process wrote last (its final decisions, its last log lines) is there when this resolves.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('close', (code, signal) => r({ code, signal })));
  let tlsPort = 0;
  let buf = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    buf += chunk.toString('utf8');
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (log.length < 10_000) log.push(line);
      if (line.includes('"sidecar listening"')) tlsPort = (JSON.parse(line) as { tlsPort: number }).tlsPort;
    }
  });
  await Promise.race([
    until(() => tlsPort > 0, timeoutMs),
    exited.then(({ code }) => {
      throw new Error(`sidecar exited (${code}) before listening:\n${log.join('\n')}`);
    }),
  ]);
  return { child, base: `https://127.0.0.1:${tlsPort}`, exited, log, stdout: () => Buffer.concat(out).toString('utf8') };
}

/**
 * What the process tests of one file share, its beforeAll/afterAll registered here: a PKI, an
 * upstream, the policy file, and `start`, which also kills after the file whatever a failed test
 * left running.
 */
export function sidecarProcessBed(policy: string) {
  let pki: Pki | undefined;
  let upstream: Upstream | undefined;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    pki = await createPki();
    upstream = await startUpstream();
    writeFileSync(join(pki.dir, 'policy.yaml'), policy);
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await upstream?.close();
    if (pki) rmSync(pki.dir, { recursive: true, force: true });
  });
  const ready = () => {
    if (!pki || !upstream) throw new Error('sidecarProcessBed: use it inside tests (after beforeAll)');
    return { pki, upstream };
  };
  return {
    get pki(): Pki {
      return ready().pki;
    },
    /** The policy and loopback listener settings (PALISADE_POLICY, ports, TLS, upstream); tests add the rest. */
    env(): Record<string, string> {
      const { pki, upstream } = ready();
      return { PALISADE_POLICY: join(pki.dir, 'policy.yaml'), ...loopbackSidecarEnv(pki, upstream.url) };
    },
    async start(env: Record<string, string>, timeoutMs?: number, o?: { captureStdout?: boolean }): Promise<SidecarProcess> {
      const p = await startSidecarProcess(env, timeoutMs, o);
      children.push(p.child);
      return p;
    },
  };
}
