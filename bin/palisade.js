#!/usr/bin/env node
// The `palisade` command. Palisade runs its TypeScript sources directly on
// Node 24+ (type stripping), so there is no build step; refuse older runtimes
// with a clear message instead of a syntax error.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(`palisade: Node.js ${process.versions.node} is too old; Node 24 or newer is required (run it through npm scripts, which use the pinned runtime: npm run palisade -- <command>)\n`);
  process.exit(2);
}
await import('../src/cli/main.ts');
