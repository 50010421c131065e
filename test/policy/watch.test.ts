import { closeSync, mkdirSync, mkdtempSync, openSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { watchPolicyFile, type PolicyWatcher } from '../../src/policy/watch.ts';

// These tests are about the poll: the directory watcher's debounce is set far
// beyond the test, so every onChange seen here comes from a poll.
const POLL = { pollMs: 10, debounceMs: 3_600_000 };
const GENEROUS_MS = 5000;

const root = mkdtempSync(join(tmpdir(), 'palisade-watch-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let open: PolicyWatcher[] = [];
afterEach(() => {
  for (const w of open) w.close();
  open = [];
});

function newDir(): string {
  const dir = join(root, Math.random().toString(36).slice(2));
  mkdirSync(dir);
  return dir;
}

function watchCounting(path: string) {
  const calls = { n: 0 };
  let wake = () => undefined as void;
  const w = watchPolicyFile(
    path,
    () => {
      calls.n++;
      wake();
    },
    POLL,
  );
  open.push(w);
  /** Resolves on the next onChange, or after a generous time (the count then says). */
  const next = () =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, GENEROUS_MS);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  return { calls, next };
}

/** Many polls' worth of time, for the cases where nothing must happen. */
const manyPolls = () => new Promise((r) => setTimeout(r, 30 * POLL.pollMs));

/**
 * Rewrites the file in place with other bytes of the same length, without
 * truncating it (so that no poll can see another size meanwhile). File
 * timestamps advance in clock ticks of a few ms: a rewrite within the tick of
 * the previous write is indistinguishable by stat, so write again until the
 * filesystem records a new mtime (what any later real edit would have).
 */
async function rewriteSameSize(file: string, text: string) {
  const before = statSync(file);
  expect(Buffer.byteLength(text)).toBe(before.size);
  do {
    await new Promise((r) => setTimeout(r, 2));
    const fd = openSync(file, 'r+');
    writeSync(fd, text, 0);
    closeSync(fd);
  } while (statSync(file).mtimeMs === before.mtimeMs);
  expect(statSync(file).ino).toBe(before.ino);
}

describe('watchPolicyFile poll', () => {
  it('does not call onChange while the file is unchanged (the first poll compares with the stat at start)', async () => {
    const file = join(newDir(), 'policy.yaml');
    writeFileSync(file, 'a: 1\n');
    const { calls } = watchCounting(file);
    await manyPolls();
    expect(calls.n).toBe(0);
  });

  it('calls onChange for an in-place rewrite that keeps the size, then is quiet again', async () => {
    const file = join(newDir(), 'policy.yaml');
    writeFileSync(file, 'a: 1\n');
    const { calls, next } = watchCounting(file);
    const changed = next();
    await rewriteSameSize(file, 'a: 2\n');
    await changed;
    expect(calls.n).toBe(1);
    await manyPolls();
    expect(calls.n).toBe(1);
  });

  it('calls onChange when a ConfigMap volume swaps its ..data symlink, even to identical content', async () => {
    // The kubelet's layout: policy.yaml -> ..data/policy.yaml, ..data -> ..<timestamp>/
    const dir = newDir();
    const text = 'apiVersion: palisade.dev/v1\n';
    mkdirSync(join(dir, '..2026_01_01_00_00_00.1'));
    writeFileSync(join(dir, '..2026_01_01_00_00_00.1', 'policy.yaml'), text);
    symlinkSync('..2026_01_01_00_00_00.1', join(dir, '..data'));
    symlinkSync(join('..data', 'policy.yaml'), join(dir, 'policy.yaml'));
    const { calls, next } = watchCounting(join(dir, 'policy.yaml'));
    await manyPolls();
    expect(calls.n).toBe(0);

    const changed = next();
    mkdirSync(join(dir, '..2026_01_01_00_01_00.2'));
    writeFileSync(join(dir, '..2026_01_01_00_01_00.2', 'policy.yaml'), text);
    symlinkSync('..2026_01_01_00_01_00.2', join(dir, '..data_tmp'));
    renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    rmSync(join(dir, '..2026_01_01_00_00_00.1'), { recursive: true });
    await changed;
    expect(calls.n).toBe(1);
  });

  it('calls onChange once when the file goes away and once when it is back', async () => {
    const file = join(newDir(), 'policy.yaml');
    writeFileSync(file, 'a: 1\n');
    const { calls, next } = watchCounting(file);
    let changed = next();
    unlinkSync(file);
    await changed;
    expect(calls.n).toBe(1);
    await manyPolls();
    expect(calls.n).toBe(1); // missing and still missing: nothing new to read

    changed = next();
    writeFileSync(file, 'a: 1\n');
    await changed;
    expect(calls.n).toBe(2);
  });

  it('calls onChange for a file that did not exist at start once it appears', async () => {
    const file = join(newDir(), 'policy.yaml');
    const { calls, next } = watchCounting(file);
    await manyPolls();
    expect(calls.n).toBe(0);
    const changed = next();
    writeFileSync(file, 'a: 1\n');
    await changed;
    expect(calls.n).toBe(1);
  });
});
