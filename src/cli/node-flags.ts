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
import { fileURLToPath } from 'node:url';

/**
 * No V8 flag by default, measured: --max-semi-space-size=2 (the young generation capped at 2 MiB
 * semi-spaces instead of growing to 16) cost 23% more CPU per request under a 32-connection
 * load (bench/ab.ts, both at once), and took nothing off idle RSS once the load's garbage is
 * given back (src/util/release-memory.ts): 117 against 116 MiB (bench/idle-rss.ts, 3 runs,
 * one-rule policy). The list stays, for a flag that measures well later.
 */
export const SIDECAR_NODE_FLAGS: readonly string[] = [];

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
export function ensureNodeFlags(wanted: readonly string[] = SIDECAR_NODE_FLAGS, env: Readonly<Record<string, string>> = SIDECAR_ENV): void {
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
