import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeDecision, encodeDecision } from '../../../src/decision/encode.ts';
import type { DecisionRecord } from '../../../src/decision/record.ts';
import { createNdjsonSink } from '../../../src/decision/sinks/ndjson.ts';
import { tempDirs } from '../../support/temp-dirs.ts';
import { blockedServiceRecord, jwtAllowRecord, oddRecord } from '../ocsf/records.ts';

const tempDir = tempDirs('palisade-ndjson');
const tempFile = () => join(tempDir(), 'decisions.ndjson');

describe('NDJSON sink', () => {
  it('writes one OCSF event per line, in order, each the exact JSON of encodeDecision (full detail)', async () => {
    const file = tempFile();
    const sink = createNdjsonSink({ target: file, lingerMs: 5, detail: 'full' });
    const records: DecisionRecord[] = [jwtAllowRecord(), blockedServiceRecord(), oddRecord(), jwtAllowRecord({ id: '01936f3e-0000-7000-8000-000000000009', requestId: 'req-9' })];
    for (const r of records) sink.write(r);
    await sink.close();
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toEqual(records.map((r) => JSON.stringify(encodeDecision(r))));
    expect(lines.map((l) => decodeDecision(JSON.parse(l)))).toEqual(records);
    expect(sink.stats()).toEqual({ accepted: 4, delivered: 4, dropped: 0, buffered: 0 });
  });

  it('counts a record its encoder refuses as dropped, and keeps writing the others', async () => {
    const file = tempFile();
    const bad = blockedServiceRecord();
    const sink = createNdjsonSink({
      target: file,
      lingerMs: 5,
      encode: (r) => {
        if (r === bad) throw new Error('cannot encode');
        return { id: r.id };
      },
    });
    const a = jwtAllowRecord();
    const c = oddRecord();
    sink.write(a);
    expect(() => sink.write(bad)).not.toThrow();
    sink.write(c);
    await sink.close();
    expect(readFileSync(file, 'utf8')).toBe(`${JSON.stringify({ id: a.id })}\n${JSON.stringify({ id: c.id })}\n`);
    expect(sink.stats()).toEqual({ accepted: 3, delivered: 2, dropped: 1, buffered: 0 });
  });

  it('keeps every line whole and in order across many buffers, a line larger than a buffer, and non-ASCII text', async () => {
    const file = tempFile();
    const sink = createNdjsonSink({ target: file, lingerMs: 1 });
    const records: DecisionRecord[] = [];
    for (let i = 0; i < 400; i++) {
      const r = jwtAllowRecord({ requestId: `req-${i}`, detail: i % 7 === 0 ? `ünïcödé ☃ 😀 ${i}` : null });
      records.push(i === 123 ? { ...r, detail: 'x'.repeat(300 * 1024) } : r);
      sink.write(records[i] as DecisionRecord);
      // Let some buffers be written while others fill.
      if (i % 50 === 0) await new Promise((resolve) => setTimeout(resolve, 2));
    }
    await sink.flush();
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(400);
    // The default detail level: standard.
    lines.forEach((line, i) => expect(line).toBe(JSON.stringify(encodeDecision(records[i] as DecisionRecord, 'standard'))));
    expect(sink.stats()).toEqual({ accepted: 400, delivered: 400, dropped: 0, buffered: 0 });
    await sink.close();
  });

  it('counts what exceeds its memory bound as dropped', async () => {
    const file = tempFile();
    const sink = createNdjsonSink({ target: file, lingerMs: 60_000, maxBuffered: 2 });
    for (let i = 0; i < 5; i++) sink.write(jwtAllowRecord({ requestId: `req-${i}` }));
    expect(sink.stats()).toMatchObject({ accepted: 5, dropped: 3, buffered: 2 });
    await sink.close();
    expect(readFileSync(file, 'utf8').split('\n').filter(Boolean)).toHaveLength(2);
    expect(sink.stats()).toEqual({ accepted: 5, delivered: 2, dropped: 3, buffered: 0 });
  });
});
