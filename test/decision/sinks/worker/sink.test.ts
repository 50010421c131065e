import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { loadSettings } from '../../../../src/config/settings.ts';
import { decodeDecision, encodeDecisionJson } from '../../../../src/decision/encode.ts';
import type { DecisionRecord } from '../../../../src/decision/record.ts';
import { createWorkerSink } from '../../../../src/decision/sinks/worker/sink.ts';
import { createLogger } from '../../../../src/log/logger.ts';
import { until } from '../../../support/harness.ts';
import { tempDirs } from '../../../support/temp-dirs.ts';
import { blockedServiceRecord, jwtAllowRecord, oddRecord } from '../../ocsf/records.ts';

const tempDir = tempDirs('palisade-worker-sink');

/** A logger whose lines are kept, parsed. */
function capturingLogger(level = 'info') {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });
  return { logger, lines };
}

const records = (n: number): DecisionRecord[] =>
  Array.from({ length: n }, (_, i) => {
    const base = [jwtAllowRecord(), blockedServiceRecord(), oddRecord()][i % 3]!;
    return { ...base, id: `01936f3e-0000-7000-8000-${String(i).padStart(12, '0')}`, requestId: `req-${i}` };
  });

describe('decision sink in a worker thread', () => {
  it('writes every record, in order, as the same NDJSON line the request-thread sink writes (the detail level reaches the thread: full here)', async () => {
    const file = join(tempDir(), 'decisions.ndjson');
    const { logger } = capturingLogger();
    const sink = await createWorkerSink({ spec: { kind: 'ndjson', target: file, detail: 'full' }, logger, batchRecords: 16, lingerMs: 2 });
    const rs = records(1000);
    for (const r of rs) sink.write(r);
    await sink.flush();
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toEqual(rs.map((r) => encodeDecisionJson(r)));
    expect(lines.map((l) => decodeDecision(JSON.parse(l)))).toEqual(rs);
    expect(sink.stats()).toEqual({ accepted: 1000, delivered: 1000, dropped: 0, buffered: 0 });
    // A record that waits less than a batch goes out after lingerMs, without a flush.
    sink.write(rs[0]!);
    await until(() => sink.stats().delivered === 1001);
    await sink.close();
    expect(readFileSync(file, 'utf8').split('\n')).toHaveLength(1002);
    expect(sink.stats()).toEqual({ accepted: 1001, delivered: 1001, dropped: 0, buffered: 0 });
  });

  it('counts what a dead thread held as dropped, starts a new thread, and delivers the records after it', async () => {
    const file = join(tempDir(), 'decisions.ndjson');
    const { logger, lines } = capturingLogger();
    const threads: Worker[] = [];
    const sink = await createWorkerSink({ spec: { kind: 'ndjson', target: file }, logger, batchRecords: 8, lingerMs: 1, restartDelayMs: 50, onThread: (w) => threads.push(w) });
    const rs = records(200);
    for (const r of rs.slice(0, 100)) sink.write(r);
    await sink.flush();
    expect(sink.stats()).toMatchObject({ accepted: 100, delivered: 100, dropped: 0 });
    // Records sent to a thread that then dies before writing them.
    for (const r of rs.slice(100, 150)) sink.write(r);
    await threads[0]!.terminate();
    await until(() => threads.length === 2);
    for (const r of rs.slice(150)) sink.write(r);
    await until(() => sink.stats().buffered === 0 && sink.stats().accepted === 200);
    await sink.flush();
    const s = sink.stats();
    // Every record is accounted for: delivered or counted as lost, nothing in between.
    expect(s.accepted).toBe(200);
    expect(s.delivered + s.dropped).toBe(200);
    expect(s.buffered).toBe(0);
    const written = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    expect(written).toHaveLength(s.delivered);
    // The first 100 and the last 50 (sent after the new thread started) are all there.
    expect(written.slice(0, 100)).toEqual(rs.slice(0, 100).map((r) => encodeDecisionJson(r, 'standard')));
    expect(written.slice(-50)).toEqual(rs.slice(150).map((r) => encodeDecisionJson(r, 'standard')));
    expect(lines.some((l) => l['msg'] === 'decision sink thread exited; starting a new one' && l['level'] === 50)).toBe(true);
    await sink.close();
  });

  it('bounds the records on their way to the thread: beyond maxQueued they are dropped and counted', async () => {
    const file = join(tempDir(), 'decisions.ndjson');
    const { logger } = capturingLogger();
    const sink = await createWorkerSink({ spec: { kind: 'ndjson', target: file }, logger, batchRecords: 10, maxQueued: 100 });
    // Written in one go: the thread cannot report taking any before the loop ends.
    const rs = records(1000);
    for (const r of rs) sink.write(r);
    expect(sink.stats()).toMatchObject({ accepted: 1000, dropped: 900, buffered: 100 });
    await sink.flush();
    expect(sink.stats()).toEqual({ accepted: 1000, delivered: 100, dropped: 900, buffered: 0 });
    expect(readFileSync(file, 'utf8').split('\n').filter(Boolean)).toEqual(rs.slice(0, 100).map((r) => encodeDecisionJson(r, 'standard')));
    // Once the thread has caught up, records flow again.
    for (const r of rs.slice(0, 50)) sink.write(r);
    await sink.close();
    expect(sink.stats()).toEqual({ accepted: 1050, delivered: 150, dropped: 900, buffered: 0 });
  });

  it('refuses to start when its sink cannot open, with the sink\'s own error', async () => {
    const dir = tempDir();
    const notADir = join(dir, 'spool');
    writeFileSync(notADir, 'a file where the spool directory should be');
    const { logger } = capturingLogger();
    const settings = loadSettings({ PALISADE_KAFKA_BROKERS: '127.0.0.1:1', PALISADE_SPOOL_DIR: notADir });
    const threads: Worker[] = [];
    await expect(createWorkerSink({ spec: { kind: 'kafka', settings }, logger, restartDelayMs: 10, onThread: (w) => threads.push(w) })).rejects.toThrow(/spool/i);
    // Nothing is left running: the failed thread is not replaced (well past the restart delay).
    await new Promise((r) => setTimeout(r, 200));
    expect(threads).toHaveLength(1);
    expect(threads[0]!.threadId).toBe(-1); // exited
  });

  it('writes the thread\'s log lines through the sidecar\'s logger, at their level', async () => {
    const { logger, lines } = capturingLogger();
    // Kafka without a spool directory warns at open; the broker is never reached (nothing is written).
    const settings = loadSettings({ PALISADE_KAFKA_BROKERS: '127.0.0.1:1', PALISADE_SHUTDOWN_GRACE_MS: '1000' });
    const sink = await createWorkerSink({ spec: { kind: 'kafka', settings }, logger });
    await until(() => lines.some((l) => typeof l['msg'] === 'string' && (l['msg'] as string).includes('PALISADE_SPOOL_DIR is not set')));
    const warning = lines.find((l) => (l['msg'] as string).includes('PALISADE_SPOOL_DIR is not set'))!;
    expect(warning).toMatchObject({ level: 40, part: 'kafka-sink', name: 'palisade' });
    await sink.close();
    expect(sink.stats()).toMatchObject({ accepted: 0, dropped: 0, buffered: 0 });
  });
});
