/**
 * The recording `policy diff` replays and the detector reads: decisions
 * written by the real NDJSON sink (one OCSF event per line) come back as the
 * exact records; anything else is refused with a clear error.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeDecision } from '../../../src/decision/encode.ts';
import { toOcsfHttpActivity } from '../../../src/decision/ocsf/http-activity.ts';
import { isDecisionEvent, OcsfReadError, recordFromOcsf } from '../../../src/decision/ocsf/read.ts';
import { createNdjsonSink } from '../../../src/decision/sinks/ndjson.ts';
import { SYNTHETIC } from './records.ts';

describe('reading decision events back', () => {
  const dir = mkdtempSync(join(tmpdir(), 'palisade-ocsf-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('an NDJSON recording written by the sink reads back to the exact records, in order', async () => {
    const file = join(dir, 'decisions.ndjson');
    const sink = createNdjsonSink({ target: file, lingerMs: 1 });
    const records = SYNTHETIC.flatMap(([, make]) => [make(), make()]);
    for (const r of records) sink.write(r);
    await sink.close();
    expect(sink.stats()).toMatchObject({ accepted: records.length, delivered: records.length, dropped: 0 });
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(records.length);
    const events = lines.map((l) => JSON.parse(l) as unknown);
    expect(events.every(isDecisionEvent)).toBe(true);
    expect(events.map(decodeDecision)).toStrictEqual(JSON.parse(JSON.stringify(records)));
  });

  it('refuses what is not a Palisade decision event, naming the problem', () => {
    expect(() => recordFromOcsf(null)).toThrow(OcsfReadError);
    expect(() => recordFromOcsf({ class_uid: 6004, unmapped: { palisade: {} } })).toThrow(/expected class_uid 4002/);
    const e = JSON.parse(JSON.stringify(toOcsfHttpActivity(SYNTHETIC[0]![1]()))) as { unmapped: { palisade: { code: string } } };
    e.unmapped.palisade.code = 'NOT_A_CODE';
    expect(() => recordFromOcsf(e)).toThrow(/unmapped\.palisade\.code: unknown code "NOT_A_CODE"/);
  });
});
