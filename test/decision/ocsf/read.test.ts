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
import type { DecisionRecord } from '../../../src/decision/record.ts';
import { standardRecord } from '../../../src/decision/ocsf/standard.ts';
import { benchAllowRecord, SYNTHETIC } from './records.ts';

describe('reading decision events back', () => {
  const dir = mkdtempSync(join(tmpdir(), 'palisade-ocsf-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('an NDJSON recording written by the sink at the full detail level reads back to the exact records, in order', async () => {
    const file = join(dir, 'decisions.ndjson');
    const sink = createNdjsonSink({ target: file, lingerMs: 1, detail: 'full' });
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

  it('at the standard detail level (the default), reads back to the record standardRecord() gives: every field the detector and policy diff use kept', async () => {
    const file = join(dir, 'decisions-standard.ndjson');
    const sink = createNdjsonSink({ target: file, lingerMs: 1 });
    const records = [...SYNTHETIC.flatMap(([, make]) => [make(), make()]), benchAllowRecord(0), benchAllowRecord(1)];
    for (const r of records) sink.write(r);
    await sink.close();
    const events = readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events).toHaveLength(records.length);
    expect(events.every((e) => e['observables'] === undefined && e['class_name'] === undefined)).toBe(true);
    const back = events.map(decodeDecision);
    expect(back).toStrictEqual(JSON.parse(JSON.stringify(records.map(standardRecord))));
    // What the detector (detectors/engine) and policy diff (src/policy/diff.ts) read is exactly the original;
    // the policy by its hash's first 16 hex digits (diff.ts compares by prefix). No decision reads the token's issuer.
    const used = (r: DecisionRecord) => ({
      id: r.id, time: r.time, verdict: r.verdict, code: r.code, rule: r.rule, decidedBy: r.decidedBy, clientIp: r.client.ip,
      method: r.request.method, path: r.request.path, host: r.request.host, route: r.request.route, bytesIn: r.request.bytesIn, status: r.response.status,
      subject: r.identity?.subject ?? null, spiffeId: r.identity?.spiffeId ?? null, tokenId: r.identity?.tokenId ?? null, clientId: r.identity?.clientId ?? null,
      scopes: r.identity?.scopes ?? null, groups: r.identity?.groups ?? null, methods: r.identity?.methods ?? null, peerSpiffeId: r.tls?.peer?.spiffeId ?? null, wouldDeny: r.wouldDeny, policyHash: r.policy?.hash.slice(0, 16) ?? null,
      peerSubject: r.tls?.peer && r.tls.peer.spiffeId === null ? r.tls.peer.subject : null,
    });
    expect(back.map(used)).toStrictEqual(JSON.parse(JSON.stringify(records.map(used))));
  });

  it('refuses what is not a Palisade decision event, naming the problem', () => {
    expect(() => recordFromOcsf(null)).toThrow(OcsfReadError);
    expect(() => recordFromOcsf({ class_uid: 6004, unmapped: { palisade: {} } })).toThrow(/expected class_uid 4002/);
    const e = JSON.parse(JSON.stringify(toOcsfHttpActivity(SYNTHETIC[0]![1]()))) as { unmapped: { palisade: { code: string } } };
    e.unmapped.palisade.code = 'NOT_A_CODE';
    expect(() => recordFromOcsf(e)).toThrow(/unmapped\.palisade\.code \/ status_code: unknown code "NOT_A_CODE"/);
  });
});
