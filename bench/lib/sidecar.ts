/** Starts `palisade sidecar` (the real CLI, in its own process) for the benchmarks. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import type { Fixtures } from './fixtures.ts';
import { freePort, startChild, waitFor, type Child } from './proc.ts';

export interface BenchSidecarOptions {
  /** Names the process in logs and its policy/decisions files (unique per run). */
  readonly name: string;
  /** The checkout whose src/cli/main.ts runs (bench/ab.ts runs two). */
  readonly root: string;
  readonly fx: Fixtures;
  /** http://127.0.0.1:port of the upstream. */
  readonly upstream: string;
  readonly policyText: string;
  /** Node flags before the script (--cpu-prof ...). */
  readonly nodeArgs?: readonly string[];
  /** More PALISADE_* settings (bench/ab.ts --env-this/--env-base), over the defaults below. */
  readonly env?: Readonly<Record<string, string>>;
  readonly log: (line: string) => void;
}

export interface BenchSidecar {
  /** https://127.0.0.1:port of the mTLS listener. */
  readonly origin: string;
  readonly child: Child;
  /** The NDJSON decisions file. */
  readonly decisions: string;
}

/** Resolves once /readyz answers 200 (the policy is loaded); fails at once if the process exits. */
export async function startBenchSidecar(o: BenchSidecarOptions): Promise<BenchSidecar> {
  const [port, admin] = [await freePort(), await freePort()];
  // The policy in a directory of its own: the sidecar watches the policy's directory.
  const policyDir = join(o.fx.dir, `policy-${o.name}`);
  mkdirSync(policyDir, { recursive: true });
  const policy = join(policyDir, 'policy.json');
  writeFileSync(policy, o.policyText);
  // Decisions in a directory of their own too: the sidecar also watches the
  // certificate and policy directories, and re-reads them on any change there.
  mkdirSync(join(o.fx.dir, 'decisions'), { recursive: true });
  const decisions = join(o.fx.dir, 'decisions', `decisions-${o.name}.ndjson`);
  const child = startChild(`sidecar-${o.name}`, [...(o.nodeArgs ?? []), join(o.root, 'src/cli/main.ts'), 'sidecar'], {
    PALISADE_POLICY: policy,
    PALISADE_LISTEN_HOST: '127.0.0.1',
    PALISADE_LISTEN_PORT: String(port),
    PALISADE_ADMIN_HOST: '127.0.0.1',
    PALISADE_ADMIN_PORT: String(admin),
    PALISADE_UPSTREAM: o.upstream,
    PALISADE_TLS_CERT: o.fx.server.cert,
    PALISADE_TLS_KEY: o.fx.server.key,
    PALISADE_TLS_CA: o.fx.caFile,
    PALISADE_DECISIONS_FILE: decisions,
    PALISADE_LOG_LEVEL: 'warn',
    ...o.env,
  }, o.log);
  await waitFor(async () => {
    if (child.proc.exitCode !== null) throw Object.assign(new Error(`the sidecar (${o.name}) exited; see its output above`), { fatal: true });
    return (await request(`http://127.0.0.1:${admin}/readyz`)).statusCode === 200;
  }, `sidecar (${o.name}) /readyz`, 120_000);
  return { origin: `https://127.0.0.1:${port}`, child, decisions };
}
