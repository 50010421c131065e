/**
 * The disk spool: where decision events wait while Kafka is unreachable or
 * slow, replayed in order when it is back (also by the next process, if this
 * one dies first).
 *
 * Format: a directory of segment files `seg-<16 digits>.ndjson`, read in
 * ascending order. Each line is one event:
 *   {"id":"<event uid>","key":"<partition key or null>","event":<the encoded event JSON>}
 * The event bytes are kept as they were encoded, so a replayed message is
 * byte-identical to the one that would have been sent. `cursor` holds how far
 * the oldest segment has been published ({"segment":..., "offset":...}); a
 * fully published segment is deleted. `lock` holds the owner's pid.
 *
 * Appends go to the newest segment, which rolls at `segmentBytes`. A batch that
 * failed to publish while newer events were already spooled is written as a
 * new segment *before* the oldest one (prepend), so order holds. Segment
 * numbers start at 10^15, leaving room for prepends.
 *
 * Durability (fsync policy): "always" fsyncs after every append; "roll" only
 * when a segment is closed and at close(); an interval N fsyncs at most every N
 * ms (a timer makes sure appended data is synced within N ms), plus roll and
 * close. A torn last line (crash mid-write) is cut off when the spool is opened.
 *
 * Bound: the bytes of all segment files never exceed `maxBytes`; entries that
 * would are refused (the caller counts them as dropped). All operations are
 * serialized; the caller never runs two at once on the same entries.
 */
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, stat, truncate, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { PalisadeError } from '../../../errors/codes.ts';

export type FsyncPolicy = { readonly kind: 'always' } | { readonly kind: 'roll' } | { readonly kind: 'interval'; readonly ms: number };

/** PALISADE_SPOOL_FSYNC text -> policy. */
export function parseFsyncPolicy(text: string): FsyncPolicy {
  if (text === 'always' || text === 'roll') return { kind: text };
  if (/^[1-9][0-9]*$/.test(text)) return { kind: 'interval', ms: Number(text) };
  throw new PalisadeError('CONFIG_INVALID', `PALISADE_SPOOL_FSYNC: "${text}" is not always, roll or a number of milliseconds`);
}

export interface SpoolOptions {
  readonly dir: string;
  readonly maxBytes: number;
  readonly fsync: FsyncPolicy;
  /** Segment roll size, bytes. Default: maxBytes/16, between 64 KiB and 16 MiB. */
  readonly segmentBytes?: number;
}

/** One spooled event: what the producer needs to publish it. */
export interface SpoolEntry {
  readonly id: string;
  readonly key: string | null;
  /** The encoded event (JSON text). */
  readonly value: string;
}

/** Entries read from the head of the spool, to be acknowledged once published. */
export interface SpoolBatch {
  readonly entries: readonly SpoolEntry[];
  /** Lines that could not be parsed (corruption), skipped; the caller counts them as dropped. */
  readonly corrupt: number;
  readonly segment: number;
  readonly endOffset: number;
}

export interface Spool {
  readonly dir: string;
  readonly limitBytes: number;
  /** Adds entries after everything spooled. Resolves to how many did not fit (dropped). */
  append(entries: readonly SpoolEntry[]): Promise<number>;
  /** Adds entries before everything spooled. Resolves to how many did not fit (dropped). */
  prepend(entries: readonly SpoolEntry[]): Promise<number>;
  /** Up to `max` entries from the head (not removed), or null when the spool is empty. */
  read(max: number): Promise<SpoolBatch | null>;
  /** Marks a batch from read() as published; deletes segments that are fully published. */
  ack(batch: SpoolBatch): Promise<void>;
  /** True when entries are waiting. */
  hasPending(): boolean;
  /** Bytes of segment files on disk (what counts against the limit). */
  diskBytes(): number;
  /** Fsyncs what was appended, closes files, releases the lock. Further calls are refused. */
  close(): Promise<void>;
}

const SEGMENT_RE = /^seg-(\d{16})\.ndjson$/;
const FIRST_SEGMENT = 1e15;
const READ_CHUNK = 1 << 20;
const NL = 0x0a;

function segmentName(n: number): string {
  return `seg-${String(n).padStart(16, '0')}.ndjson`;
}

/** One spool line for an entry (value is already JSON). */
export function spoolLine(e: SpoolEntry): string {
  return `{"id":${JSON.stringify(e.id)},"key":${JSON.stringify(e.key)},"event":${e.value}}\n`;
}

function parseLine(line: string): SpoolEntry | null {
  try {
    const o = JSON.parse(line) as { id?: unknown; key?: unknown; event?: unknown };
    if (typeof o.id !== 'string' || (o.key !== null && typeof o.key !== 'string') || o.event === undefined) return null;
    // Keep the event's original bytes: the part after the fixed prefix, without the closing brace.
    const prefix = `{"id":${JSON.stringify(o.id)},"key":${JSON.stringify(o.key)},"event":`;
    const value = line.startsWith(prefix) ? line.slice(prefix.length, -1) : JSON.stringify(o.event);
    return { id: o.id, key: o.key, value };
  } catch {
    return null;
  }
}

interface Segment {
  readonly n: number;
  readonly path: string;
  /** Bytes written and visible to readers. */
  size: number;
}

function pidAlive(pid: number): boolean {
  if (pid === process.pid) return false; // a restarted container may reuse our pid: that lock is stale
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function takeLock(dir: string): Promise<string> {
  const path = join(dir, 'lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(path, `${process.pid}\n`, { flag: 'wx' });
      return path;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(owner) && owner > 0 && pidAlive(owner)) {
        throw new PalisadeError('CONFIG_INVALID', `PALISADE_SPOOL_DIR ${dir} is in use by process ${owner}; give each sidecar its own spool directory`);
      }
      await unlink(path).catch(() => undefined); // stale: its owner is gone
    }
  }
  throw new PalisadeError('CONFIG_INVALID', `PALISADE_SPOOL_DIR ${dir}: could not take the lock`);
}

/** Cuts a torn last line (no trailing newline) left by a crash mid-write. Returns the new size. */
async function repairTail(path: string, size: number): Promise<number> {
  if (size === 0) return 0;
  const fh = await open(path, 'r');
  try {
    const last = Buffer.alloc(1);
    await fh.read(last, 0, 1, size - 1);
    if (last[0] === NL) return size;
    let end = size;
    const buf = Buffer.alloc(64 * 1024);
    while (end > 0) {
      const start = Math.max(0, end - buf.length);
      const { bytesRead } = await fh.read(buf, 0, end - start, start);
      const i = buf.subarray(0, bytesRead).lastIndexOf(NL);
      if (i >= 0) {
        end = start + i + 1;
        break;
      }
      end = start;
    }
    await truncate(path, end);
    return end;
  } finally {
    await fh.close();
  }
}

function syncDir(dir: string): void {
  // Makes a created or deleted segment name durable (Linux; elsewhere best effort).
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* not supported on this platform */
  }
}

export async function openSpool(options: SpoolOptions, logger: Logger): Promise<Spool> {
  const dir = options.dir;
  const limitBytes = options.maxBytes;
  const segmentBytes = options.segmentBytes ?? Math.min(16 << 20, Math.max(64 << 10, Math.floor(limitBytes / 16)));
  const fsync = options.fsync;
  await mkdir(dir, { recursive: true });
  const lockPath = await takeLock(dir);

  const segments: Segment[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const m = SEGMENT_RE.exec(name);
    if (!m) {
      if (name.endsWith('.tmp')) await unlink(join(dir, name)).catch(() => undefined);
      continue;
    }
    const path = join(dir, name);
    const size = await repairTail(path, (await stat(path)).size);
    if (size === 0) await unlink(path);
    else segments.push({ n: Number(m[1]), path, size });
  }
  const cursorPath = join(dir, 'cursor');
  let cursor = { n: -1, offset: 0 };
  try {
    const c = JSON.parse(await readFile(cursorPath, 'utf8')) as { segment?: unknown; offset?: unknown };
    const m = typeof c.segment === 'string' ? SEGMENT_RE.exec(c.segment) : null;
    const seg = m ? segments.find((s) => s.n === Number(m[1])) : undefined;
    if (seg && typeof c.offset === 'number' && Number.isInteger(c.offset) && c.offset >= 0 && c.offset <= seg.size) cursor = { n: seg.n, offset: c.offset };
  } catch {
    /* no cursor: replay the oldest segment from its start (duplicates at worst) */
  }
  let diskBytes = segments.reduce((n, s) => n + s.size, 0);
  if (segments.length > 0) logger.info({ dir, segments: segments.length, bytes: diskBytes }, 'spool holds events from an earlier run; they are published first');

  // The newest segment of this process, open for appending.
  let tail: { seg: Segment; fh: FileHandle } | null = null;
  let dirty = false;
  let syncTimer: NodeJS.Timeout | null = null;
  let lastSync = Date.now();
  let closed = false;
  let chain: Promise<unknown> = Promise.resolve();

  function serial<T>(op: () => Promise<T>): Promise<T> {
    const run = chain.then(() => {
      if (closed) throw new PalisadeError('INTERNAL_ERROR', 'spool is closed');
      return op();
    });
    chain = run.catch(() => undefined);
    return run;
  }

  async function syncTail(): Promise<void> {
    if (tail && dirty) await tail.fh.sync();
    dirty = false;
    lastSync = Date.now();
  }

  async function afterWrite(): Promise<void> {
    dirty = true;
    if (fsync.kind === 'always') await syncTail();
    else if (fsync.kind === 'interval') {
      if (Date.now() - lastSync >= fsync.ms) await syncTail();
      else if (!syncTimer) {
        syncTimer = setTimeout(() => {
          syncTimer = null;
          void serial(syncTail).catch((err: unknown) => logger.error({ err: (err as Error).message }, 'spool fsync failed'));
        }, fsync.ms - (Date.now() - lastSync));
        syncTimer.unref();
      }
    }
  }

  async function closeTail(): Promise<void> {
    if (!tail) return;
    dirty = true; // a segment is synced when it is closed, whatever the policy
    await syncTail();
    await tail.fh.close();
    tail = null;
  }

  /** Keeps the entries that fit under the limit; returns their text and how many were refused. */
  function fit(entries: readonly SpoolEntry[]): { text: string; bytes: number; refused: number } {
    let text = '';
    let bytes = 0;
    let kept = 0;
    for (const e of entries) {
      const line = spoolLine(e);
      const n = Buffer.byteLength(line);
      if (diskBytes + bytes + n > limitBytes) break;
      text += line;
      bytes += n;
      kept++;
    }
    return { text, bytes, refused: entries.length - kept };
  }

  async function appendOp(entries: readonly SpoolEntry[]): Promise<number> {
    const { text, bytes, refused } = fit(entries);
    if (bytes > 0) {
      if (tail && tail.seg.size >= segmentBytes) await closeTail();
      if (!tail) {
        const last = segments[segments.length - 1];
        const n = last ? last.n + 1 : FIRST_SEGMENT;
        const seg: Segment = { n, path: join(dir, segmentName(n)), size: 0 };
        tail = { seg, fh: await open(seg.path, 'a+') }; // a+: the reader may read the segment being written
        segments.push(seg);
        syncDir(dir);
      }
      await tail.fh.write(text);
      tail.seg.size += bytes;
      diskBytes += bytes;
      await afterWrite();
    }
    return refused;
  }

  async function prependOp(entries: readonly SpoolEntry[]): Promise<number> {
    const first = segments[0];
    if (!first) return appendOp(entries);
    const { text, bytes, refused } = fit(entries);
    if (bytes > 0) {
      const n = first.n - 1;
      const seg: Segment = { n, path: join(dir, segmentName(n)), size: bytes };
      // Written whole, then renamed: a reader never sees a half-written prepended segment.
      const tmp = `${seg.path}.tmp`;
      const fh = await open(tmp, 'w');
      try {
        await fh.write(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, seg.path);
      syncDir(dir);
      segments.unshift(seg);
      diskBytes += bytes;
    }
    return refused;
  }

  async function removeSegment(seg: Segment): Promise<void> {
    if (tail?.seg === seg) {
      await tail.fh.close();
      tail = null;
      dirty = false;
    }
    await unlink(seg.path).catch(() => undefined);
    segments.splice(segments.indexOf(seg), 1);
    diskBytes -= seg.size;
    if (cursor.n === seg.n) cursor = { n: -1, offset: 0 };
  }

  async function readOp(max: number): Promise<SpoolBatch | null> {
    for (;;) {
      const seg = segments[0];
      if (!seg) return null;
      const start = cursor.n === seg.n ? cursor.offset : 0;
      if (start >= seg.size) {
        await removeSegment(seg);
        continue;
      }
      const entries: SpoolEntry[] = [];
      let corrupt = 0;
      let offset = start;
      const fh = tail?.seg === seg ? tail.fh : await open(seg.path, 'r');
      try {
        let carry = Buffer.alloc(0);
        while (entries.length < max && offset + carry.length < seg.size) {
          const want = Math.min(READ_CHUNK, seg.size - offset - carry.length);
          const buf = Buffer.alloc(want);
          const { bytesRead } = await fh.read(buf, 0, want, offset + carry.length);
          if (bytesRead === 0) break;
          const data = carry.length > 0 ? Buffer.concat([carry, buf.subarray(0, bytesRead)]) : buf.subarray(0, bytesRead);
          let pos = 0;
          while (entries.length < max) {
            const nl = data.indexOf(NL, pos);
            if (nl < 0) break;
            const e = parseLine(data.toString('utf8', pos, nl + 1).slice(0, -1));
            if (e) entries.push(e);
            else corrupt++;
            pos = nl + 1;
          }
          offset += pos;
          carry = data.subarray(pos);
          if (entries.length >= max) break;
        }
      } finally {
        if (tail?.seg !== seg) await fh.close();
      }
      if (entries.length === 0 && corrupt === 0) return null;
      return { entries, corrupt, segment: seg.n, endOffset: offset };
    }
  }

  async function ackOp(batch: SpoolBatch): Promise<void> {
    const seg = segments.find((s) => s.n === batch.segment);
    if (!seg) return;
    if (batch.endOffset >= seg.size) {
      await removeSegment(seg);
      syncDir(dir);
      await unlink(cursorPath).catch(() => undefined);
      return;
    }
    cursor = { n: seg.n, offset: batch.endOffset };
    // Not fsynced: a lost cursor only means replaying part of a segment again (duplicates, no loss).
    const tmp = `${cursorPath}.tmp`;
    await writeFile(tmp, JSON.stringify({ segment: segmentName(seg.n), offset: batch.endOffset }));
    await rename(tmp, cursorPath);
  }

  return {
    dir,
    limitBytes,
    append: (entries) => serial(() => appendOp(entries)),
    prepend: (entries) => serial(() => prependOp(entries)),
    read: (max) => serial(() => readOp(max)),
    ack: (batch) => serial(() => ackOp(batch)),
    hasPending() {
      const first = segments[0];
      if (!first) return false;
      return segments.length > 1 || (cursor.n === first.n ? cursor.offset : 0) < first.size;
    },
    diskBytes: () => diskBytes,
    async close() {
      await serial(async () => {
        if (syncTimer) clearTimeout(syncTimer);
        await closeTail();
        syncDir(dir);
      });
      closed = true;
      await unlink(lockPath).catch(() => undefined);
    },
  };
}
