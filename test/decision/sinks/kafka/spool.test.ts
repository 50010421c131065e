// The disk spool on a real filesystem: order across append/prepend/segments, the
// byte limit, torn-tail repair, the cursor across reopen, the lock.
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openSpool, parseFsyncPolicy, spoolLine, type Spool, type SpoolEntry } from '../../../../src/decision/sinks/kafka/spool.ts';
import { createLogger } from '../../../../src/log/logger.ts';
import { tempDirs } from '../../../support/temp-dirs.ts';

const logger = createLogger({ level: 'silent' });
const tempDir = tempDirs('palisade-spool-test');

function entries(from: number, n: number, key = 'k'): SpoolEntry[] {
  return Array.from({ length: n }, (_, i) => ({ id: `id-${from + i}`, key, value: JSON.stringify({ seq: from + i, text: 'x'.repeat(50) }) }));
}

async function drain(spool: Spool, batch = 7): Promise<SpoolEntry[]> {
  const out: SpoolEntry[] = [];
  for (;;) {
    const b = await spool.read(batch);
    if (!b) return out;
    out.push(...b.entries);
    await spool.ack(b);
  }
}

describe('disk spool', () => {
  it('parses the fsync policy setting', () => {
    expect(parseFsyncPolicy('always')).toEqual({ kind: 'always' });
    expect(parseFsyncPolicy('roll')).toEqual({ kind: 'roll' });
    expect(parseFsyncPolicy('250')).toEqual({ kind: 'interval', ms: 250 });
    expect(() => parseFsyncPolicy('sometimes')).toThrow(/PALISADE_SPOOL_FSYNC/);
  });

  it('replays appends in order across segment rolls, keeping event bytes and null keys', async () => {
    const dir = tempDir();
    const spool = await openSpool({ dir, maxBytes: 10 << 20, fsync: { kind: 'always' }, segmentBytes: 1024 }, logger);
    const odd: SpoolEntry = { id: 'odd', key: null, value: '{"b":1,"2":"line\\nbreak","u":"\\u00e9"}' };
    for (let i = 0; i < 40; i += 4) await spool.append(entries(i, 4));
    await spool.append([odd]);
    for (let i = 40; i < 80; i += 4) await spool.append(entries(i, 4));
    expect(readdirSync(dir).filter((f) => f.startsWith('seg-')).length).toBeGreaterThan(3);
    const got = await drain(spool);
    expect(got.map((e) => e.id)).toEqual([...entries(0, 40).map((e) => e.id), 'odd', ...entries(40, 40).map((e) => e.id)]);
    expect(got[40]).toEqual(odd);
    expect(spool.hasPending()).toBe(false);
    expect(spool.diskBytes()).toBe(0);
    expect(readdirSync(dir).filter((f) => f.startsWith('seg-'))).toEqual([]);
    await spool.close();
  });

  it('puts a prepended batch before everything already spooled', async () => {
    const dir = tempDir();
    const spool = await openSpool({ dir, maxBytes: 10 << 20, fsync: { kind: 'roll' } }, logger);
    await spool.append(entries(10, 5));
    await spool.prepend(entries(0, 10));
    await spool.append(entries(15, 5));
    expect((await drain(spool, 4)).map((e) => e.id)).toEqual(entries(0, 20).map((e) => e.id));
    await spool.close();
  });

  it('refuses what does not fit under the byte limit and counts it', async () => {
    const dir = tempDir();
    const spool = await openSpool({ dir, maxBytes: 65536, fsync: { kind: 'always' } }, logger);
    let fits = 0;
    for (let bytes = 0; bytes + Buffer.byteLength(spoolLine(entries(fits, 1)[0]!)) <= 65536; fits++) bytes += Buffer.byteLength(spoolLine(entries(fits, 1)[0]!));
    const refused = await spool.append(entries(0, fits + 25));
    expect(refused).toBe(25);
    expect(spool.diskBytes()).toBeLessThanOrEqual(65536);
    expect(await spool.append(entries(fits + 25, 1))).toBe(1);
    const got = await drain(spool, 100);
    expect(got.map((e) => e.id)).toEqual(entries(0, fits).map((e) => e.id));
    // Space is back once published.
    expect(await spool.append(entries(0, 3))).toBe(0);
    await spool.close();
  });

  it('survives a reopen: resumes at the cursor, cuts a torn last line, skips corrupt lines', async () => {
    const dir = tempDir();
    let spool = await openSpool({ dir, maxBytes: 10 << 20, fsync: { kind: 'always' } }, logger);
    await spool.append(entries(0, 30));
    const first = await spool.read(10);
    await spool.ack(first!);
    await spool.close();

    const seg = readdirSync(dir).find((f) => f.startsWith('seg-'))!;
    appendFileSync(join(dir, seg), 'not json\n');
    appendFileSync(join(dir, seg), spoolLine(entries(30, 1)[0]!));
    appendFileSync(join(dir, seg), '{"id":"torn","key":"k","event":{"se'); // crash mid-write
    spool = await openSpool({ dir, maxBytes: 10 << 20, fsync: { kind: 'always' } }, logger);
    let corrupt = 0;
    const got: string[] = [];
    for (let b = await spool.read(8); b; b = await spool.read(8)) {
      corrupt += b.corrupt;
      got.push(...b.entries.map((e) => e.id));
      await spool.ack(b);
    }
    expect(got).toEqual(entries(10, 21).map((e) => e.id));
    expect(corrupt).toBe(1);
    await spool.close();
  });

  it('is owned by one live process at a time; a stale lock is taken over', async () => {
    const dir = tempDir();
    // The parent process (vitest's) is alive: its lock must be respected.
    writeFileSync(join(dir, 'lock'), `${process.ppid}\n`);
    await expect(openSpool({ dir, maxBytes: 1 << 20, fsync: { kind: 'always' } }, logger)).rejects.toThrow(/in use by process/);
    // A pid that cannot be alive (above pid_max) stands for a process that died holding the lock.
    writeFileSync(join(dir, 'lock'), '99999999\n');
    const spool = await openSpool({ dir, maxBytes: 1 << 20, fsync: { kind: 'always' } }, logger);
    expect(readFileSync(join(dir, 'lock'), 'utf8').trim()).toBe(String(process.pid));
    await spool.close();
    expect(readdirSync(dir)).not.toContain('lock');
  });
});
