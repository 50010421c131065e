/**
 * docs/events.md stays true: its example events are valid against our JSON
 * Schemas and the official OCSF 1.8.0 definition and are what the code
 * produces, and its field-by-field table names every decision record field.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { anomalyFromDetectionFinding, toOcsfDetectionFinding } from '../../../src/decision/ocsf/detection-finding.ts';
import { toOcsfHttpActivity } from '../../../src/decision/ocsf/http-activity.ts';
import { decisionEncoder } from '../../../src/decision/encode.ts';
import { recordFromOcsf } from '../../../src/decision/ocsf/read.ts';
import { standardRecord } from '../../../src/decision/ocsf/standard.ts';
import { validateOcsf } from '../../../src/decision/ocsf/validate.ts';
import { checkEvent, loadOcsf } from './ocsf-source.ts';
import { benchAllowRecord, jwtAllowRecord } from './records.ts';

const doc = readFileSync(new URL('../../../docs/events.md', import.meta.url), 'utf8');

/** The first ```json block after a heading. */
function exampleAfter(heading: string): Record<string, any> {
  const at = doc.indexOf(`\n## ${heading}\n`);
  expect(at, `heading "${heading}" in docs/events.md`).toBeGreaterThan(0);
  const m = /```json\n([\s\S]*?)\n```/.exec(doc.slice(at));
  expect(m, `a json example after "${heading}"`).not.toBeNull();
  return JSON.parse((m as RegExpExecArray)[1] as string) as Record<string, any>;
}

/** The release changes; the example shows one. */
function withoutRelease<T extends Record<string, any>>(e: T): T {
  const c = structuredClone(e);
  c['metadata'].product.version = 'x';
  return c;
}

describe('docs/events.md', () => {
  const ocsf = loadOcsf();

  it('the HTTP Activity example is valid and is exactly what the mapping produces for its record', () => {
    const e = exampleAfter('Example: HTTP Activity');
    expect(validateOcsf('http-activity', e).errors).toEqual([]);
    expect(checkEvent(ocsf, 'http_activity', e)).toEqual([]);
    const record = recordFromOcsf(e);
    expect(withoutRelease(JSON.parse(JSON.stringify(toOcsfHttpActivity(record))))).toEqual(withoutRelease(e));
  });

  it('the standard-detail example is valid, and is what the standard mapping produces for the record it reads back to', () => {
    const e = exampleAfter('Example: standard detail');
    expect(validateOcsf('http-activity', e).errors).toEqual([]);
    expect(checkEvent(ocsf, 'http_activity', e)).toEqual([]);
    expect(e['observables']).toBeUndefined();
    const record = recordFromOcsf(e);
    expect(withoutRelease(JSON.parse(decisionEncoder('standard')(record)))).toEqual(withoutRelease(e));
    // It is the benchmark record's event, and standardRecord() says what came back.
    expect(withoutRelease(JSON.parse(decisionEncoder('standard')(benchAllowRecord(3))))).toEqual(withoutRelease(e));
    expect(record).toEqual(JSON.parse(JSON.stringify(standardRecord(benchAllowRecord(3)))));
  });

  it('the Detection Finding example is valid and is what the mapping produces for its anomaly', () => {
    const e = exampleAfter('Detection Finding (2004)');
    expect(validateOcsf('detection-finding', e).errors).toEqual([]);
    expect(checkEvent(ocsf, 'detection_finding', e)).toEqual([]);
    expect(withoutRelease(JSON.parse(JSON.stringify(toOcsfDetectionFinding(anomalyFromDetectionFinding(e)))))).toEqual(withoutRelease(e));
  });

  it('the field-by-field table names every decision record field', () => {
    const section = doc.slice(doc.indexOf('\n## Field by field\n'), doc.indexOf('\n## Outcome\n'));
    const documented = new Set<string>();
    for (const line of section.split('\n')) {
      const first = /^\| ([^|]+) \|/.exec(line)?.[1];
      if (!first) continue;
      const names = [...first.matchAll(/`([^`]+)`/g)].map((m) => m[1] as string);
      const head = names[0] ?? '';
      const prefix = head.includes('.') ? head.slice(0, head.lastIndexOf('.')) : '';
      for (const n of names) documented.add(n.startsWith('.') ? `${prefix}${n}` : n);
    }
    const leaves: string[] = [];
    const walk = (v: unknown, path: string) => {
      const whole = ['identity.claims', 'request.params', 'policy'];
      if (v === null || typeof v !== 'object' || Array.isArray(v) || whole.includes(path)) {
        leaves.push(path);
        return;
      }
      for (const [k, x] of Object.entries(v)) walk(x, path ? `${path}.${k}` : k);
    };
    walk(jwtAllowRecord(), '');
    expect(leaves.filter((l) => !documented.has(l))).toEqual([]);
  });
});
