/**
 * What loading the full benchmark policy (4 MB of JSON, 100,000 block-list
 * entries) costs: `loadPolicyFile` time, peak RSS and the garbage it leaves,
 * and the RSS after an ordinary full GC and after the memory-reducing one the
 * sidecar runs after each load (src/util/release-memory.ts).
 * Each load runs in a fresh process, so that the peak RSS is this load's alone
 * and no earlier load has warmed the parser; the median of the runs is shown.
 * The same document written as block YAML is measured too (YAML files keep
 * the YAML parser). A last fresh process per file times loadPolicyFile's
 * steps one by one (read, parse, validate + hash + freeze, compile).
 *
 *   node bench/policy-load.ts [runs] [block-entries]
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { createLogger } from '../src/log/logger.ts';
import { compilePolicy, loadPolicyFile, parsePolicyText, validatePolicy } from '../src/policy/load.ts';
import { createServices } from '../src/sidecar/compose.ts';
import { releaseMemory } from '../src/util/release-memory.ts';
import { fullPolicy, makeFixtures } from './lib/fixtures.ts';

interface Sample {
  ms: number;
  rssBeforeMiB: number;
  peakRssMiB: number;
  heapAfterMiB: number;
  heapAfterGcMiB: number;
  /** RSS after an ordinary full GC: V8 keeps the emptied pages. */
  rssAfterGcMiB: number;
  /** RSS after the memory-reducing GC the sidecar runs after a load (src/util/release-memory.ts). */
  rssAfterReleaseMiB: number;
}

const MiB = 1024 * 1024;

if (process.argv[2] === '--steps') {
  const file = process.argv[3]!;
  const services = createServices(createLogger({ level: 'silent' }));
  const steps: Record<string, number> = {};
  let t = performance.now();
  const lap = (name: string) => {
    const now = performance.now();
    steps[name] = Math.round(now - t);
    t = now;
  };
  const text = await readFile(file, 'utf8');
  lap('read');
  const data = parsePolicyText(text, file);
  lap('parse');
  const { document, hash } = validatePolicy(data, file);
  lap('validate');
  await compilePolicy(document, hash, dirname(file), services);
  lap('compile');
  process.stdout.write(JSON.stringify(steps) + '\n');
  process.exit(0);
}

if (process.argv[2] === '--child') {
  // One load in this fresh process; prints one JSON line for the parent.
  const file = process.argv[3]!;
  const services = createServices(createLogger({ level: 'silent' }));
  const gc = (globalThis as { gc?: () => void }).gc!;
  gc();
  const rssBeforeMiB = process.memoryUsage().rss / MiB;
  const t0 = performance.now();
  await loadPolicyFile(file, services);
  const ms = performance.now() - t0;
  // maxRSS is in KiB (VmHWM): the peak of the whole process, startup included.
  const peakRssMiB = process.resourceUsage().maxRSS / 1024;
  const heapAfterMiB = process.memoryUsage().heapUsed / MiB;
  gc();
  const heapAfterGcMiB = process.memoryUsage().heapUsed / MiB;
  const rssAfterGcMiB = process.memoryUsage().rss / MiB;
  releaseMemory();
  const rssAfterReleaseMiB = process.memoryUsage().rss / MiB;
  const sample: Sample = { ms, rssBeforeMiB, peakRssMiB, heapAfterMiB, heapAfterGcMiB, rssAfterGcMiB, rssAfterReleaseMiB };
  process.stdout.write(JSON.stringify(sample) + '\n');
  process.exit(0);
}

const RUNS = Number(process.argv[2] ?? 3);
const BLOCKED = Number(process.argv[3] ?? 100_000);
const dir = mkdtempSync(join(tmpdir(), 'palisade-policy-load-'));
try {
  const fx = await makeFixtures(dir);
  // The JWT stage is given a reachable JWKS, as in the benchmark.
  const jwks = readFileSync(fx.jwksFile);
  const server = createServer((_q, r) => r.end(jwks));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const jwksUri = `http://127.0.0.1:${(server.address() as { port: number }).port}/jwks.json`;
  const json = fullPolicy(fx, jwksUri, BLOCKED);
  const files = { json: join(dir, 'policy.json'), yaml: join(dir, 'policy.yaml') };
  writeFileSync(files.json, json);
  writeFileSync(files.yaml, stringify(JSON.parse(json)));

  // Asynchronous, so that the JWKS server can answer the child meanwhile.
  const child = async (mode: string, file: string) => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', import.meta.filename, mode, file], { encoding: 'utf8' });
    return stdout.trim().split('\n').pop()!;
  };
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  for (const [kind, file] of Object.entries(files)) {
    const samples: Sample[] = [];
    for (let i = 0; i < RUNS; i++) samples.push(JSON.parse(await child('--child', file)) as Sample);
    const m = (k: keyof Sample) => median(samples.map((s) => s[k])).toFixed(0);
    console.log(
      `${kind.padEnd(4)} ${(statSync(file).size / MiB).toFixed(1)} MiB, median of ${RUNS}: ` +
        `loadPolicyFile ${m('ms')} ms; RSS ${m('rssBeforeMiB')} -> peak ${m('peakRssMiB')} MiB; ` +
        `heap after load ${m('heapAfterMiB')} MiB, after a full GC ${m('heapAfterGcMiB')} MiB; ` +
        `RSS after that GC ${m('rssAfterGcMiB')} MiB, after the sidecar's memory-reducing GC ${m('rssAfterReleaseMiB')} MiB`,
    );
    const steps = JSON.parse(await child('--steps', file)) as Record<string, number>;
    console.log(`     steps (ms): ${Object.entries(steps).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  }
  server.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
