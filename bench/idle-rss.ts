/**
 * Idle memory of `palisade sidecar` (the real CLI, its own process): RSS a
 * few seconds after /readyz, with no traffic, for each policy, decision sink,
 * sink thread and set of Node settings, the bare fastify + @fastify/reply-from
 * proxy beside it. The sidecar's own defaults (docs/deploy.md, "Memory
 * settings") are the "defaults" rows; the others override one of them.
 * Idle RSS barely depends on other load on the machine, unlike CPU figures.
 *
 *   node bench/idle-rss.ts [settle seconds] [runs] [policy name filter, e.g. 100k]
 *       [--sinks ndjson,kafka] [--threads worker,main] [--settings defaults,no-compile-cache,arenas-16,semi-2]
 *
 * Policies: "minimal" (one public rule), "full, no blocks" (mTLS + JWT +
 * RBAC + rate limits + body schema), "full, 100k blocks" (the same + the
 * benchmark's 100,000 block entries). Sinks: NDJSON to a file; Kafka (the
 * broker at PALISADE_KAFKA_BROKERS, default 127.0.0.1:19092; topics unique to
 * the run, spool in a temp directory). Threads: PALISADE_DECISIONS_THREAD
 * (worker: the decision sink in its thread; main: on the request thread; or
 * any other value the setting takes). Settings: "defaults" (the sidecar's
 * own: src/cli/node-flags.ts), "no-compile-cache" (NODE_DISABLE_COMPILE_CACHE=1:
 * every .ts file type-stripped at start, as before the cache), "arenas-16"
 * (glibc's own number of malloc arenas here), "semi-2" (--max-semi-space-size=2).
 * The compile cache is filled first (bin/warm-compile-cache.js), as the image's is.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { fullPolicy, makeFixtures, minimalPolicy } from './lib/fixtures.ts';
import { freePort, startChild, waitFor, type Child } from './lib/proc.ts';
import { startBenchSidecar } from './lib/sidecar.ts';

const ROOT = resolve(import.meta.dirname, '..');
const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    sinks: { type: 'string', default: 'ndjson' },
    threads: { type: 'string', default: 'worker,main' },
    settings: { type: 'string', default: 'defaults,no-compile-cache' },
  },
});
const SETTLE_S = Number(positionals[0] ?? 5);
const RUNS = Number(positionals[1] ?? 3);
const ONLY = positionals[2] ?? '';
const list = (v: string) => v.split(',').map((x) => x.trim()).filter(Boolean);
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

// `palisade sidecar` applies its defaults itself (src/cli/node-flags.ts), unless the environment
// or node's command line already sets them: the other rows override one.
const SETTINGS: Record<string, [string[], Record<string, string>]> = {
  defaults: [[], {}],
  'no-compile-cache': [[], { NODE_DISABLE_COMPILE_CACHE: '1' }],
  'arenas-16': [[], { MALLOC_ARENA_MAX: '16' }],
  'semi-2': [['--max-semi-space-size=2'], {}],
};
for (const name of list(opts.settings)) if (!SETTINGS[name]) throw new Error(`--settings: unknown "${name}"; known: ${Object.keys(SETTINGS).join(', ')}`);
for (const sink of list(opts.sinks)) if (sink !== 'ndjson' && sink !== 'kafka') throw new Error(`--sinks: unknown "${sink}"; known: ndjson, kafka`);

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
  execFileSync(process.execPath, [join(ROOT, 'bin/warm-compile-cache.js')], { stdio: 'ignore' });
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
    rows.push(`  ${'bare fastify + reply-from proxy'.padEnd(58)} ${median(rss).toFixed(1).padStart(6)} MiB   (runs: ${rss.map((x) => x.toFixed(1)).join(', ')})`);
  }
  for (const [policyName, policyText] of policies.filter(([name]) => name.includes(ONLY))) {
    for (const sink of list(opts.sinks)) {
      for (const settingName of list(opts.settings)) {
        const [flags, settingEnv] = SETTINGS[settingName]!;
        for (const thread of list(opts.threads)) {
          const rss: number[] = [];
          for (let r = 0; r < RUNS; r++) {
            const name = `idle-${process.pid}-${n++}`;
            const env: Record<string, string> = { ...settingEnv, PALISADE_DECISIONS_THREAD: thread };
            if (sink === 'kafka') {
              const spool = join(dir, `spool-${name}`);
              mkdirSync(spool, { recursive: true });
              Object.assign(env, {
                PALISADE_KAFKA_BROKERS: process.env['PALISADE_KAFKA_BROKERS'] || '127.0.0.1:19092',
                PALISADE_KAFKA_TOPIC_DECISIONS: `${name}-decisions`,
                PALISADE_KAFKA_TOPIC_BLOCKLIST: `${name}-blocklist`,
                PALISADE_KAFKA_TOPIC_ALERTS: `${name}-alerts`,
                PALISADE_SPOOL_DIR: spool,
              });
            }
            const s = await startBenchSidecar({ name, root: ROOT, fx, upstream: upstreamHttp, policyText, nodeArgs: flags, env, log });
            await sleep(SETTLE_S * 1000);
            rss.push(s.child.rssMiB());
            await s.child.stop();
          }
          rows.push(`  ${`${policyName}, ${sink}, ${settingName}, sink thread ${thread}`.padEnd(58)} ${median(rss).toFixed(1).padStart(6)} MiB   (runs: ${rss.map((x) => x.toFixed(1)).join(', ')})`);
          log(rows[rows.length - 1] as string);
        }
      }
    }
  }
  console.log(`idle RSS ${SETTLE_S} s after ready, median of ${RUNS} (node ${process.version}; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')})`);
  for (const row of rows) console.log(row);
} finally {
  for (const c of children) await c.stop();
  rmSync(dir, { recursive: true, force: true });
}
