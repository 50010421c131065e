// How a long-running command stops, in real child processes: it exits by itself after a clean drain;
// if something still holds the event loop after the drain, it says what and exits with the drain's
// outcome instead of waiting out the grace period; a drain past the grace period exits 1.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'palisade-shutdown-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const SHUTDOWN = resolve(import.meta.dirname, '../../src/cli/shutdown.ts');
const LOGGER = resolve(import.meta.dirname, '../../src/log/logger.ts');

/** Runs a command body (`close` is the drain) under runUntilSignal, sends SIGTERM once it is up. */
async function run(name: string, close: string, o: { graceMs: number; lingerMs: number }): Promise<{ code: number | null; ms: number; log: Record<string, unknown>[] }> {
  const file = join(dir, `${name}.ts`);
  writeFileSync(
    file,
    `import { runUntilSignal } from ${JSON.stringify(SHUTDOWN)};
import { createLogger } from ${JSON.stringify(LOGGER)};
const logger = createLogger({ level: 'info' });
const keepAlive = setInterval(() => undefined, 1000); // the service itself, until the drain
setTimeout(() => process.stderr.write('up\\n'), 10);
await runUntilSignal({ logger, graceMs: ${o.graceMs}, lingerMs: ${o.lingerMs}, message: 'stopping', close: async () => { clearInterval(keepAlive); ${close} } });
process.exitCode = 0;
`,
  );
  const child = spawn(process.execPath, [file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let out = ''; // the logger writes standard error
  await new Promise<void>((res) =>
    child.stderr.on('data', (c: Buffer) => {
      out += c.toString('utf8');
      if (out.includes('up\n')) res();
    }),
  );
  const t0 = Date.now();
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  return { code, ms: Date.now() - t0, log: out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('runUntilSignal', () => {
  it('a clean drain: the process ends by itself, exit 0, no warning', async () => {
    const r = await run('clean', 'await new Promise((r) => setTimeout(r, 50));', { graceMs: 10_000, lingerMs: 5_000 });
    expect(r.code).toBe(0);
    expect(r.ms).toBeLessThan(5_000); // the linger never fired
    expect(r.log.map((l) => l['msg'])).toEqual(['stopping']);
  });

  it('something left open after the drain: names it and exits 0 after the linger, not at the grace period', async () => {
    const r = await run('leak', 'setInterval(() => undefined, 1000);', { graceMs: 60_000, lingerMs: 300 });
    expect(r.code).toBe(0);
    expect(r.ms).toBeLessThan(30_000);
    const warn = r.log.find((l) => l['level'] === 40);
    expect(warn).toMatchObject({ msg: 'shutdown complete, but the process did not exit by itself; exiting', lingerMs: 300 });
    expect(warn?.['resources']).toContain('Timeout');
  });

  it('a drain past the grace period: exit 1', async () => {
    const r = await run('stuck', 'await new Promise(() => setInterval(() => undefined, 1000));', { graceMs: 300, lingerMs: 300 });
    expect(r.code).toBe(1);
    expect(r.log.find((l) => l['level'] === 50)).toMatchObject({ msg: 'shutdown grace period over; exiting', graceMs: 300 });
  });
});
