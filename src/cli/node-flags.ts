/**
 * The Node/V8 settings `palisade sidecar` runs with, applied by the command itself so that
 * whoever starts it (the container's entry point, `npx palisade sidecar`, `node
 * src/cli/main.ts sidecar`, the benchmarks) gets the measured defaults without knowing them.
 *
 * V8 sizes its heap when the process starts: the same flags set later from JavaScript
 * (v8.setFlagsFromString) change nothing (measured: the young generation stays at its 32 MiB
 * default). So the command re-executes itself once, same process id (process.execve: signals,
 * the container's PID 1 and the pod's probes are unaffected), with the flags and variables it lacks; it costs
 * one Node start-up (~40 ms) before anything else runs.
 *
 * The user's own value wins: a flag already given on node's command line or in NODE_OPTIONS, or
 * a variable already in the environment (MALLOC_ARENA_MAX=16 for glibc's own number on two
 * cores), is not set again. docs/deploy.md, "Memory settings",
 * has the measurements behind each value.
 */
import { totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';

/**
 * The young generation capped at 16 MiB semi-spaces (--max-semi-space-size=16: 32 MiB of new
 * space), where V8 would make it larger. V8 sizes it from the memory it is given: 6 MiB of new
 * space in a 512 MiB container, 32 in a 1 GiB one, 64 from 2 GiB on, and under a 32-connection load
 * without a container limit the request thread's reached 64-128 MiB, the decision thread's 32-64,
 * all of it resident at the peak. Measured side by side (bench/ab.ts, Kafka sink, 32 connections,
 * the flag against V8's own size, three runs): new space 32 against 64 MiB at the peak, peak RSS
 * 212/208/202 against 222/262/192 MiB, and no CPU cost beyond the noise (-1.7%, +2.2%, +0.9% CPU
 * per request; with NDJSON on the request thread -3.0%, 154 against 185 MiB). Smaller costs CPU: 8 MiB semi-spaces
 * +2.5% CPU per request, 2 MiB +23% (bench/ab.ts); in a worker thread 8 MiB of young generation
 * against 16, +2.4%. So the flag is added only where the memory (the container's limit, else the
 * machine's) is over 1 GiB: below that V8's own size is already as small or smaller, and a
 * fixed size would raise it. V8 applies the flag to every thread, the decision thread too
 * (32 MiB of new space instead of up to 64).
 */
export function sidecarNodeFlags(memoryBytes: number): string[] {
  return memoryBytes > 1024 ** 3 ? ['--max-semi-space-size=16'] : [];
}

/** The memory V8 sizes its heap from: the container's limit when there is one, else the machine's (bytes). */
export function memoryForHeap(): number {
  const limit = process.constrainedMemory();
  return limit > 0 && limit < totalmem() ? limit : totalmem();
}

/**
 * MALLOC_ARENA_MAX=2: glibc gives each thread that allocates (the decision thread, V8's and
 * libuv's helpers) an arena of its own, up to 8 per core, and each keeps what it freed. Two
 * arenas: 8-16 MiB less idle RSS (bench/idle-rss.ts, 3 runs, one-rule policy: 116 against 130
 * MiB with the decision thread, 104 against 112 without it), and no CPU cost under load (bench/ab.ts, 4 phases: 7% less CPU
 * per request, within that run's noise). glibc reads it when the process starts, hence here.
 */
export const SIDECAR_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2', NODE_COMPILE_CACHE: compileCacheDir() };

/**
 * NODE_COMPILE_CACHE: Node's on-disk cache of compiled modules, which for a .ts file holds the
 * type-stripped source too. Without it every start strips each of the sidecar's ~150 .ts files,
 * and Node's type stripper (a WebAssembly module) stays loaded for good in each thread that did:
 * +17 MiB RSS in a bare process, +16 MiB for a worker thread (measured alone). With the cache
 * filled, neither thread loads the stripper: one-rule policy 104 -> 90-92 MiB idle on the request
 * thread (bench/idle-rss.ts; docs/deploy.md, "Memory settings"). Starts are faster too (no strip,
 * no parse of cached code).
 *
 * The directory is the package's own node_modules/.cache (a tool cache: git and the image's
 * allow-list leave it out). A run that can write there fills it; in the image it is filled at build
 * time (bin/warm-compile-cache.js), since the container's root file system is read-only. Node checks
 * each entry against the file's contents and its own version, V8 flags and CPU: a stale or foreign
 * entry is ignored, never used, and a directory it cannot read or write only costs the saving.
 */
export function compileCacheDir(): string {
  return fileURLToPath(new URL('../../node_modules/.cache/palisade-compile', import.meta.url));
}

/** A flag's name as V8 reads it (underscores and dashes are the same to V8). */
function flagName(flag: string): string {
  const eq = flag.indexOf('=');
  return (eq < 0 ? flag : flag.slice(0, eq)).replace(/^--?/, '').replaceAll('_', '-');
}

/** The flags of `wanted` that neither node's command line (execArgv) nor NODE_OPTIONS already sets. */
export function missingNodeFlags(wanted: readonly string[], execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  const given = new Set([...execArgv, ...(nodeOptions ?? '').split(/\s+/)].filter((a) => a.startsWith('-')).map(flagName));
  return wanted.filter((f) => !given.has(flagName(f)));
}

/**
 * Re-executes this process with the flags of `wanted` and the variables of `env` it lacks.
 * Returns when there is nothing to add, or when the runtime cannot re-execute (then the process
 * runs on as started, and says so on standard error).
 */
export function ensureNodeFlags(wanted: readonly string[] = sidecarNodeFlags(memoryForHeap()), env: Readonly<Record<string, string>> = SIDECAR_ENV): void {
  const missing = missingNodeFlags(wanted, process.execArgv, process.env['NODE_OPTIONS']);
  const missingEnv = Object.entries(env).filter(([k]) => process.env[k] === undefined);
  if (missing.length === 0 && missingEnv.length === 0) return;
  const args = [process.execPath, ...missing, ...process.execArgv, ...process.argv.slice(1)];
  try {
    process.execve!(process.execPath, args, { ...process.env, ...Object.fromEntries(missingEnv) });
  } catch (err) {
    const what = [...missing, ...missingEnv.map(([k, v]) => `${k}=${v}`)].join(' ');
    process.stderr.write(`palisade: running without ${what} (could not re-execute node: ${(err as Error).message})\n`);
  }
}
