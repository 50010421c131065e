/**
 * `policy diff` on a recording at the standard detail level (the default):
 * the event carries the policy hash's first 16 hex digits, and the differ
 * still tells records made under the old policy from those made under
 * another one.
 */
import { describe, expect, it } from 'vitest';
import { decodeDecision, decisionEncoder } from '../../src/decision/encode.ts';
import type { DecisionRecord } from '../../src/decision/record.ts';
import { createLogger } from '../../src/log/logger.ts';
import type { CompiledPolicy } from '../../src/policy/compiled.ts';
import { createDiffer } from '../../src/policy/diff.ts';
import { compilePolicy, parsePolicyText, validatePolicy } from '../../src/policy/load.ts';
import { createServices } from '../../src/sidecar/compose.ts';
import { benchAllowRecord } from '../decision/ocsf/records.ts';

const policy = (version: string) => `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: orders, version: "${version}" }
spec:
  authorization:
    rules:
      - { id: create-order, methods: [POST], paths: [/orders], authenticated: true }
`;

async function compile(yaml: string): Promise<CompiledPolicy> {
  const { document, hash } = validatePolicy(parsePolicyText(yaml, 'p'), 'p');
  return compilePolicy(document, hash, '/tmp', createServices(createLogger({ level: 'silent' })));
}

/** A recorded request as a standard event read back (what `policy diff --decisions` reads). */
function recorded(p: CompiledPolicy, i: number): DecisionRecord {
  const r = { ...benchAllowRecord(i), policy: { name: p.name, version: p.version, hash: p.hash } };
  return decodeDecision(JSON.parse(decisionEncoder('standard')(r)));
}

describe('policy diff over standard-detail events', () => {
  it('counts as made under another policy only the records whose hash prefix is not the old policy\'s', async () => {
    const old = await compile(policy('1'));
    const other = await compile(policy('2'));
    expect(old.hash).not.toBe(other.hash);
    const under = recorded(old, 0);
    expect(under.policy?.hash).toBe(old.hash.slice(0, 16));
    const d = createDiffer(old, other);
    d.add(under);
    d.add(recorded(old, 1));
    d.add(recorded(other, 2));
    const s = d.summary();
    expect(s.replayed).toBe(3);
    expect(s.otherPolicy).toBe(1);
    // The same recording at the full level (whole hashes) counts the same.
    const full = createDiffer(old, other);
    for (const [p, i] of [[old, 0], [old, 1], [other, 2]] as const) full.add({ ...benchAllowRecord(i), policy: { name: p.name, version: p.version, hash: p.hash } });
    expect(full.summary().otherPolicy).toBe(1);
  });
});
