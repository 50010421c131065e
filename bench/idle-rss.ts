/**
 * Idle memory of `palisade sidecar` (the real CLI, its own process): RSS a
 * few seconds after /readyz, with no traffic, for each policy and each set
 * of Node/V8 flags, the bare fastify + @fastify/reply-from proxy beside it.
 * The sidecar's own defaults (docs/deploy.md, "Memory settings") are the
 * first row; the others override one of them.
 * Idle RSS barely depends on other load on the machine, unlike CPU figures.
 *
 *   node bench/idle-rss.ts [settle seconds] [runs] [policy name filter, e.g. 100k]
 *
 * Policies: "minimal" (one public rule), "full, no blocks" (mTLS + JWT +
 * RBAC + rate limits + body schema), "full" (the same + the benchmark's
 * 100,000 block entries). Settings: the defaults, glibc's own number of malloc
 * arenas (MALLOC_ARENA_MAX: each thread's arena keeps what it freed), and a
 * young-generation cap (--max-semi-space-size, MiB per semi-space). The
 * decision sink runs in its thread (default) and, for comparison, on the
 * request thread (PALISADE_DECISIONS_THREAD=main).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { request } from 'undici';
import { fullPolicy, makeFixtures, minimalPolicy } from './lib/fixtures.ts';
import { freePort, startChild, waitFor, type Child } from './lib/proc.ts';
import { startBenchSidecar } from './lib/sidecar.ts';

const ROOT = resolve(import.meta.dirname, '..');
const SETTLE_S = Number(process.argv[2] ?? 5);
const RUNS = Number(process.argv[3] ?? 3);
const ONLY = process.argv[4] ?? '';
const log = (line: string) => process.stderr.write(line + '\n');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const portOpen = (port: number) =>
  new Promise<boolean>((done) => {
    const c = connect(port, '127.0.0.1', () => {
      c.destroy();
      done(true);
    });
    c.on('error', () => done(false));
  });

const dir = mkdtempSync(join(tmpdir(), 'palisade-idle-rss-'));
const children: Child[] = [];
try {
  const fx = await makeFixtures(dir);
  const tlsEnv = { BENCH_CERT: fx.server.cert, BENCH_KEY: fx.server.key, BENCH_CA: fx.caFile };
  const [httpPort, tlsPort] = [await freePort(), await freePort()];
  const upstream = startChild('upstream', [join(ROOT, 'bench/targets/upstream.ts')], { ...tlsEnv, BENCH_HTTP_PORT: String(httpPort), BENCH_TLS_PORT: String(tlsPort), BENCH_JWKS: fx.jwksFile }, log);
  children.push(upstream);
  const upstreamHttp = `http://127.0.0.1:${httpPort}`;
  await waitFor(async () => (await request(`${upstreamHttp}/jwks.json`)).statusCode === 200, 'upstream');
  const jwksUri = `${upstreamHttp}/jwks.json`;

  const policies: [string, string][] = [
    ['minimal', minimalPolicy()],
    ['full, no blocks', fullPolicy(fx, jwksUri, 0)],
    ['full, 100k blocks', fullPolicy(fx, jwksUri, 100_000)],
  ];
  // `palisade sidecar` applies its defaults itself (src/cli/node-flags.ts: MALLOC_ARENA_MAX=2),
  // unless the environment or node's command line already sets them: the other rows override them.
  const flagSets: [string, string[], Record<string, string>][] = [
    ['defaults', [], {}],
    ['MALLOC_ARENA_MAX=16 (glibc default here)', [], { MALLOC_ARENA_MAX: '16' }],
    ['--max-semi-space-size=2', ['--max-semi-space-size=2'], {}],
  ];
  const rows: string[] = [];
  let n = 0;

  // The bare proxy, for scale.
  {
    const rss: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const port = await freePort();
      const bare = startChild('bare-proxy', [join(ROOT, 'bench/targets/bare-proxy.ts')], { ...tlsEnv, BENCH_PORT: String(port), BENCH_UPSTREAM: upstreamHttp }, log);
      await waitFor(() => portOpen(port), 'bare proxy');
      await sleep(SETTLE_S * 1000);
      rss.push(bare.rssMiB());
      await bare.stop();
    }
    rows.push(`  ${'bare fastify + reply-from proxy'.padEnd(44)} ${median(rss).toFixed(0).padStart(5)} MiB`);
  }
  for (const [policyName, policyText] of policies.filter(([name]) => name.includes(ONLY))) {
    for (const [flagName, flags, flagEnv] of flagSets) {
      for (const thread of ['worker', 'main']) {
        const rss: number[] = [];
        for (let r = 0; r < RUNS; r++) {
          const s = await startBenchSidecar({ name: `idle-${n++}`, root: ROOT, fx, upstream: upstreamHttp, policyText, nodeArgs: flags, env: { ...flagEnv, PALISADE_DECISIONS_THREAD: thread }, log });
          await sleep(SETTLE_S * 1000);
          rss.push(s.child.rssMiB());
          await s.child.stop();
        }
        rows.push(`  ${`${policyName}, ${flagName}, sink thread ${thread}`.padEnd(44)} ${median(rss).toFixed(0).padStart(5)} MiB   (runs: ${rss.map((x) => x.toFixed(0)).join(', ')})`);
        log(rows[rows.length - 1] as string);
      }
    }
  }
  console.log(`idle RSS ${SETTLE_S} s after ready, median of ${RUNS} (node ${process.version}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
  for (const row of rows) console.log(row);
} finally {
  for (const c of children) await c.stop();
  rmSync(dir, { recursive: true, force: true });
}
