// A policy's own block list is compiled while the policy loads, and the loaded document keeps
// no entry objects (src/blocklist/policy-blocklist.ts): the same blocks, counts and ids, the
// same hash as before, the same errors.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { policyBlocklist } from '../../src/blocklist/policy-blocklist.ts';
import { createLogger } from '../../src/log/logger.ts';
import { loadPolicyFile, parsePolicyText, validatePolicy } from '../../src/policy/load.ts';
import { createServices } from '../../src/sidecar/compose.ts';

const dir = mkdtempSync(join(tmpdir(), 'palisade-policy-blocklist-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const services = createServices(createLogger({ level: 'silent' }));

const entries = [
  { ip: '203.0.113.7', reason: 'scanner' },
  { cidr: '2001:db8:7::/48', reason: 'abusive network', id: 'net-7' },
  { subject: 'mallory', reason: 'fraud', id: 'ticket-42', audit: true },
  { tokenId: 'jti-leaked', reason: 'leaked token' },
];
const policy = (list: object[]) =>
  JSON.stringify({ apiVersion: 'palisade.dev/v1', kind: 'Policy', metadata: { name: 'blocks', version: '1' }, spec: { authorization: { rules: [{ id: 'open', paths: ['/**'], public: true }] }, blocklist: { entries: list } } });

let n = 0;
function file(text: string): string {
  const f = join(dir, `p${n++}.json`);
  writeFileSync(f, text);
  return f;
}
const request = (clientIp: string) => ({ method: 'GET', path: '/x', host: 'h', identity: null, clientIp, tokenFailure: null });

describe('a loaded policy keeps its block list compiled, not its entries', () => {
  it('the document keeps no entries; counts, ids and blocks come from the compiled form; the hash is the full document\'s', async () => {
    const text = policy(entries);
    const loaded = await loadPolicyFile(file(text), services);
    expect(loaded.document.spec.blocklist.entries).toEqual([]);
    // The hash covers the entries as written (with their defaults), exactly as a copy validated whole hashes.
    expect(loaded.hash).toBe(validatePolicy(parsePolicyText(text, 't'), 't').hash);
    expect(loaded.hash).not.toBe(validatePolicy(parsePolicyText(policy([]), 't'), 't').hash);
    const c = policyBlocklist(loaded.document, Date.now());
    expect(c.index.size).toBe(4);
    expect(Object.fromEntries(c.byKind)).toEqual({ ip: 1, cidr: 1, subject: 1, tokenId: 1 });
    expect([...c.ids].sort()).toEqual(['net-7', 'ticket-42']);
    const stage = loaded.stages.find((s) => s.name === 'blocklist')!;
    expect(stage.explain!(request('203.0.113.7')).deny).toMatchObject({ code: 'BLOCKED', rule: 'policy:ip' });
    expect(stage.explain!(request('2001:db8:7:1::9')).deny).toMatchObject({ code: 'BLOCKED', rule: 'net-7' });
    expect(stage.explain!(request('198.51.100.1')).deny).toBeNull();
  });

  it('a document validated whole (tools, tests) keeps its entries and compiles them on first use, to the same result', () => {
    const { document } = validatePolicy(parsePolicyText(policy(entries), 't'), 't');
    expect(document.spec.blocklist.entries).toHaveLength(4);
    const c = policyBlocklist(document, Date.now());
    expect(c.index.size).toBe(4);
    expect([...c.ids].sort()).toEqual(['net-7', 'ticket-42']);
    expect(policyBlocklist(document, Date.now())).toBe(c); // once per document
  });

  it('a bad entry is refused while loading, naming the entry, as the stage did', async () => {
    const bad = policy([...entries, { ip: '203.0.113.7', reason: 'again' }]);
    await expect(loadPolicyFile(file(bad), services)).rejects.toMatchObject({ code: 'POLICY_INVALID', message: expect.stringMatching(/policy\.spec \(blocklist stage\): spec\.blocklist\.entries\[4\]: ip "203\.0\.113\.7" is already blocked by an earlier entry \(policy:ip\)/) });
  });
});
