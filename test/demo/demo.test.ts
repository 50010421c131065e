/** `palisade demo` end to end: the scripted requests come out as the policy says, with reasons. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runDemo } from '../../src/demo/run.ts';

describe('palisade demo', () => {
  it('runs the scripted requests with the expected verdicts and writes one decision per request', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'palisade-demo-'));
    const lines: string[] = [];
    const demo = await runDemo({ dir, port: 0, adminPort: 0, servicePort: 0, once: true, blockSeconds: 2, out: (l) => lines.push(l) });
    try {
      const text = lines.join('\n');
      const row = (needle: string) => lines.find((l) => l.includes(needle)) ?? '';
      expect(row("alice (tenant acme) reads")).toMatch(/ 200 /);
      expect(row('tenant isolation')).toMatch(/403 AUTHZ_CONDITION_FAILED/);
      expect(row('no user token')).toMatch(/401 AUTHN_REQUIRED/);
      expect(row('expired token')).toMatch(/401 AUTHN_TOKEN_EXPIRED/);
      expect(row('ops reaches')).toMatch(/ 200 /);
      expect(row('dot-segment')).toMatch(/403 AUTHZ_NO_MATCHING_RULE/);
      expect(row('explicit deny')).toMatch(/403 AUTHZ_DENY_RULE/);
      expect(row('foreign CA')).toMatch(/TLS handshake refused/);
      expect(text).toMatch(/try more:\n {2}curl --cacert/);
      // The detector loop closed: the flood was blocked by the detector, other clients were not, the block expired.
      expect(text).toMatch(/first 403 BLOCKED \d+ ms after the flood started/);
      expect(row('alert rate.burst')).toMatch(/-> block: /);
      expect(row('block list:')).toMatch(/source=detector rule=detector:rate\.burst/);
      expect(row('frontend meanwhile')).toMatch(/-> 200 /);
      expect(row('block expired')).toMatch(/-> 200$/);
      const blocked = demo.decisions.filter((d) => d.code === 'BLOCKED');
      expect(blocked.length).toBeGreaterThan(0);
      expect(new Set(blocked.map((d) => d.identity?.subject ?? d.tls?.peer?.spiffeId))).toEqual(new Set(['spiffe://demo.local/ns/shop/sa/scraper']));
      // One decision per request that reached HTTP (the foreign-CA handshake never did), in the file too.
      await demo.sidecar.close();
      const file = readFileSync(join(dir, 'decisions.ndjson'), 'utf8').trim().split('\n');
      expect(file.length).toBe(demo.decisions.length);
      expect(file.join('\n')).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/); // no token in any event
    } finally {
      await demo.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
