/**
 * The policy holder reads the file once per reload, with the same POLICY_UNREADABLE message
 * as the offline tools; a refused file leaves the previous policy in force and the same bad
 * bytes are reported once, not on every poll.
 */
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PalisadeError } from '../../src/errors/codes.ts';
import { createLogger } from '../../src/log/logger.ts';
import { loadPolicyFile } from '../../src/policy/load.ts';
import { createServices } from '../../src/sidecar/compose.ts';
import { startPolicyHolder } from '../../src/sidecar/policy-holder.ts';

const dir = mkdtempSync(join(tmpdir(), 'palisade-holder-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const logger = createLogger({ level: 'silent' });
const services = createServices(logger);

const policy = (version: string) => `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: holder, version: "${version}" }
spec:
  authorization:
    rules:
      - id: open
        paths: ["/**"]
        public: true
`;

describe('policy holder', () => {
  it('refuses a missing file at start with the same message as policy check', async () => {
    const file = join(dir, 'missing.yaml');
    const offline = await loadPolicyFile(file, services).catch((e: unknown) => e as PalisadeError);
    const started = await startPolicyHolder({ file, services, logger }).catch((e: unknown) => e as PalisadeError);
    expect(started).toBeInstanceOf(PalisadeError);
    expect((started as PalisadeError).code).toBe('POLICY_UNREADABLE');
    expect((started as PalisadeError).message).toBe(`${file}: cannot read policy file: ENOENT`);
    expect((started as PalisadeError).message).toBe((offline as PalisadeError).message);
  });

  it('keeps the previous policy on a refused file and reports the same bad bytes once', async () => {
    const file = join(dir, 'policy.yaml');
    writeFileSync(file, policy('1'));
    const loaded: string[] = [];
    const refused: string[] = [];
    const holder = await startPolicyHolder({ file, services, logger, onLoaded: (p) => loaded.push(p.version), onRefused: (e) => refused.push(e.message) });
    try {
      expect(holder.current()?.version).toBe('1');
      // Unchanged bytes: nothing compiled, nothing reported.
      expect(await holder.reload()).toBeNull();
      expect(loaded).toEqual(['1']);

      writeFileSync(file, 'apiVersion: [');
      const e = await holder.reload();
      expect((e as PalisadeError).code).toBe('POLICY_UNREADABLE');
      expect(await holder.reload()).toBeNull(); // same broken bytes: not re-reported
      expect(refused).toHaveLength(1);
      expect(holder.current()?.version).toBe('1');

      unlinkSync(file);
      const gone = await holder.reload();
      expect(gone?.message).toBe(`${file}: cannot read policy file: ENOENT`);
      expect(holder.current()?.version).toBe('1');

      writeFileSync(file, policy('2'));
      expect(await holder.reload()).toBeNull();
      expect(holder.current()?.version).toBe('2');
      expect(loaded).toEqual(['1', '2']);
    } finally {
      holder.close();
    }
  });
});
