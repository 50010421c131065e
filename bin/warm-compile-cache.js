#!/usr/bin/env node
// Fills Node's compile cache (NODE_COMPILE_CACHE, the directory `palisade sidecar` gives itself:
// src/cli/node-flags.ts) with every module of src/ and detectors/, so that no start has to
// type-strip a .ts file: a thread that strips even one keeps Node's type stripper loaded for good
// (+16-17 MiB RSS each, docs/deploy.md "Memory settings"). The image runs it at build time, since
// the container's root file system is read-only; elsewhere the first run fills the cache itself.
//
//   node bin/warm-compile-cache.js     (prints the directory and how many modules it holds)
//
// Plain JavaScript: it must enable the cache before the first .ts file is loaded.
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { constants, enableCompileCache, flushCompileCache } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
// The sidecar's own directory (compileCacheDir() in src/cli/node-flags.ts), unless the environment
// names one, as it would for the sidecar.
const dir = process.env.NODE_COMPILE_CACHE || join(root, 'node_modules', '.cache', 'palisade-compile');
const enabled = enableCompileCache(dir);
if (enabled.status === constants.compileCacheStatus.FAILED || enabled.status === constants.compileCacheStatus.DISABLED) {
  process.stderr.write(`warm-compile-cache: Node's compile cache is off here (${enabled.message ?? 'NODE_DISABLE_COMPILE_CACHE'}); nothing done\n`);
  process.exit(1);
}

const files = (sub) =>
  readdirSync(join(root, sub), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.d.ts'))
    .map((e) => join(e.parentPath, e.name));

// The command's entry point runs the command when loaded: compiled by a child that only asks for the version.
const main = join(root, 'src', 'cli', 'main.ts');
execFileSync(process.execPath, [main, '--version'], { env: { ...process.env, NODE_COMPILE_CACHE: dir }, stdio: 'ignore' });
let modules = 1;
for (const file of [...files('src'), ...files('detectors')]) {
  if (file === main) continue;
  try {
    await import(pathToFileURL(file).href);
  } catch {
    // Compiled (and cached) before it ran: the decision thread's entry point refuses to run outside its thread.
  }
  modules++;
}
flushCompileCache();
process.stdout.write(`${enabled.directory ?? dir}: ${modules} modules\n`);
process.exit(0);
