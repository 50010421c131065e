/**
 * The standard event's text writer (standardEventJson, what the sinks write)
 * against the standard mapping's object (toOcsfHttpActivityStandard): the
 * same bytes as JSON.stringify, for every record shape and for every string
 * a client controls carrying what JSON must escape (quotes, backslashes,
 * control characters, U+2028, unicode, paired and lone surrogates), and the
 * text is valid OCSF that reads back to standardRecord().
 */
import { describe, expect, it } from 'vitest';
import { decodeDecision, decisionEncoder, encodeDecision, encodeDecisionJson } from '../../../src/decision/encode.ts';
import { standardEventJson, standardRecord, toOcsfHttpActivityStandard } from '../../../src/decision/ocsf/standard.ts';
import { validateOcsf } from '../../../src/decision/ocsf/validate.ts';
import type { DecisionRecord } from '../../../src/decision/record.ts';
import { checkEvent, loadOcsf } from './ocsf-source.ts';
import { SYNTHETIC, benchAllowRecord } from './records.ts';

/** Strings that JSON.stringify writes differently from their plain quoting. */
const NASTY = [
  'quote " and backslash \\',
  'newline \n tab \t cr \r nul \u0000 unit-sep \u001f del \u007f',
  'line sep \u2028 para sep \u2029',
  'ünïcödé ☃ 日本',
  'emoji \ud83d\ude00 (a pair)',
  'lone high \ud800 here',
  'lone low \udfff here',
  'high at the end \ud83d',
  '',
];

function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

/** Every record shape the mapping knows, and each of them with hostile strings wherever the record has one. */
function variants(withOddNumbers = true): DecisionRecord[] {
  const base = [...SYNTHETIC.map(([, make]) => make()), benchAllowRecord(0), benchAllowRecord(5)];
  const out: DecisionRecord[] = [];
  for (const r of base) {
    out.push(r);
    out.push({ ...r, traceId: null, rule: null, detail: null, wouldDeny: [], quotas: [{ rule: 'q"1', key: 'k\u0000\ud800', limit: 10, windowMs: 60_000 }] });
    out.push({ ...r, request: { ...r.request, httpVersion: '2.0', scheme: r.request.scheme === 'https' ? 'http' : 'https' } });
    out.push({ ...r, request: { ...r.request, httpVersion: '', host: '', path: '' } });
    out.push({ ...r, request: { ...r.request, host: 'h.example:8443', path: '' } });
    // Numbers no real record has (OCSF wants integers): for the byte comparison only.
    if (withOddNumbers) out.push({ ...r, durationMs: Number.NaN, upstreamMs: 1e21, time: 1.5 });
    // The code's own title as a detail (it cannot go in status_detail).
    out.push({ ...r, detail: 'Forbidden by a deny rule', code: 'AUTHZ_DENY_RULE', verdict: 'deny', decidedBy: 'authz' });
    out.push({ ...r, policy: r.policy ? { name: r.policy.name, version: r.policy.version, hash: 'short' } : null });
    // Claims as JSON.parse gives them from a hostile token: __proto__ and constructor as own properties, next to dropped ones.
    if (r.identity) out.push({ ...r, identity: { ...r.identity, claims: JSON.parse('{"sub":"s","__proto__":{"polluted":1},"constructor":"c","exp":1,"tenant":"t"}') as Record<string, unknown> } });
    for (const s of NASTY) {
      out.push({
        ...r,
        requestId: `r${s}`,
        rule: s,
        detail: s,
        wouldDeny: [{ stage: 'authz', code: 'AUTHZ_DENY_RULE', rule: s }],
        client: { ...r.client, forwardedFor: ['10.0.0.1', s] },
        request: { ...r.request, method: s === '' ? 'GET' : `M${s}`, path: `/p/${s}`, host: `h${s}:80`, userAgent: s, route: `/r/${s}` },
        identity: r.identity
          ? { ...r.identity, subject: s, clientId: s, tokenId: s, spiffeId: `spiffe://x/${s}`, scopes: [s], groups: [s], claims: { [`k${s}`]: s, nested: { a: [s, 1, null] } } }
          : null,
        tls: r.tls ? { ...r.tls, peer: r.tls.peer ? { ...r.tls.peer, subject: `CN=${s}`, spiffeId: s === '' ? null : `spiffe://p/${s}` } : null } : null,
        policy: r.policy ? { ...r.policy, name: s, version: s } : null,
      });
    }
  }
  return out;
}

describe('the standard event text (standardEventJson)', () => {
  const ocsf = loadOcsf();

  it('is JSON.stringify of the standard event object, byte for byte, for every shape and hostile string (twice: cached parts too)', () => {
    const all = variants();
    expect(all.length).toBeGreaterThan(100);
    for (const r of all) {
      const expected = JSON.stringify(toOcsfHttpActivityStandard(r));
      expect(standardEventJson(r)).toBe(expected);
      expect(standardEventJson(r)).toBe(expected);
      expect(encodeDecisionJson(r, 'standard')).toBe(expected);
      expect(decisionEncoder('standard')(r)).toBe(expected);
      expect(JSON.parse(standardEventJson(r))).toEqual(JSON.parse(JSON.stringify(encodeDecision(r, 'standard'))));
    }
  });

  it('escapes what the request controls exactly as JSON.stringify does, and the text parses back to the same strings', () => {
    for (const s of NASTY) {
      const r = { ...benchAllowRecord(1), request: { ...benchAllowRecord(1).request, path: `/p/${s}`, userAgent: s }, detail: s === '' ? null : s };
      const text = standardEventJson(r);
      const e = JSON.parse(text) as { http_request: { url: { path: string }; user_agent: string }; status_detail?: string };
      expect(e.http_request.url.path).toBe(`/p/${s}`);
      expect(e.http_request.user_agent).toBe(s);
      expect(text).toContain(JSON.stringify(`/p/${s}`));
      // Never a raw control character or a lone surrogate in the text itself.
      expect(text).not.toMatch(/[\u0000-\u001f]/);
      expect(text.isWellFormed()).toBe(true);
    }
  });

  it("keeps the benchmark's allowed request within issue 16's 1,200 bytes mean, a third of the full level's", () => {
    const records = Array.from({ length: 64 }, (_, i) => benchAllowRecord(i));
    const mean = (f: (r: DecisionRecord) => string) => records.reduce((n, r) => n + Buffer.byteLength(f(r)), 0) / records.length;
    expect(mean(standardEventJson)).toBeLessThanOrEqual(1200);
    expect(mean(standardEventJson)).toBeLessThan(mean(decisionEncoder('full')) / 3);
  });

  it('is valid against our schema and the official OCSF 1.8.0 definition, and reads back to standardRecord()', () => {
    for (const r of variants(false)) {
      const e = JSON.parse(standardEventJson(r)) as Record<string, unknown>;
      expect(validateOcsf('http-activity', e).errors, `${r.code} ${r.request.path}`).toEqual([]);
      expect(checkEvent(ocsf, 'http_activity', e), `${r.code} ${r.request.path}`).toEqual([]);
      expect(decodeDecision(e)).toStrictEqual(clone(standardRecord(r)));
    }
  });
});
