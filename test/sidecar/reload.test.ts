/**
 * Policy hot reload: a valid change applies between requests without losing
 * any; an invalid file is refused with the field and the reason and the
 * previous policy stays; a Kubernetes ConfigMap-style symlink swap is seen.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startHarness, until, type Harness } from '../support/harness.ts';

const policy = (version: string, path: string) => `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: reload, version: "${version}" }
spec:
  authorization:
    rules:
      - id: open-${version}
        paths: ["${path}"]
        public: true
`;

describe('policy hot reload', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(policy('1', '/v1/**'));
  });
  afterAll(async () => {
    await h?.close();
  });

  it('applies a new policy under load without failing a single request', async () => {
    const a = await h.client('spiffe://test.local/ns/load/sa/gen');
    const hash1 = h.sidecar.policy()!.hash;
    let stop = false;
    const results: number[] = [];
    const workers = Array.from({ length: 8 }, async () => {
      while (!stop) {
        // /both/ is allowed by the old and the new policy alike.
        const r = await send(a, `${h.base}/both/x`);
        results.push(r.status);
      }
    });
    await until(() => results.length > 50, 20_000);
    h.writePolicy(policy('2', '/both/**').replace('paths: ["/both/**"]', 'paths: ["/both/**", "/v2/**"]'));
    await until(() => h.sidecar.policy()!.hash !== hash1, 20_000);
    const n = results.length;
    await until(() => results.length > n + 50, 20_000);
    stop = true;
    await Promise.all(workers);
    // The first policy did not allow /both: only requests answered before the swap were 403.
    const firstOk = results.indexOf(200);
    expect(firstOk).toBeGreaterThanOrEqual(0);
    expect(results.slice(firstOk).every((s) => s === 200)).toBe(true);
    expect(results.every((s) => s === 200 || s === 403)).toBe(true);
    await until(() => h.decisions.length >= results.length);
    // Exactly one decision per request, each naming the policy hash that decided.
    expect(h.decisions.length).toBe(results.length);
    const hashes = new Set(h.decisions.map((d) => d.policy?.hash));
    expect(hashes).toEqual(new Set([hash1, h.sidecar.policy()!.hash]));
    expect((await send(a, `${h.base}/v2/ok`)).status).toBe(200);
  });

  it('refuses an invalid policy, names the field, and keeps the old one in force', async () => {
    const a = await h.client('spiffe://test.local/ns/load/sa/gen');
    const before = h.sidecar.policy()!;
    h.writePolicy(policy('3', 'no-leading-slash'));
    const err = await h.sidecar.reloadPolicy();
    expect(err?.message).toMatch(/policy\/spec\/authorization\/rules\/0\/paths\/0.*"no-leading-slash".*must match pattern/);
    expect(h.sidecar.policy()).toBe(before);
    expect((await send(a, `${h.base}/v2/ok`)).status).toBe(200);

    h.writePolicy('apiVersion: palisade.dev/v1\nkind: Policy\nmetadata: {name: x\n');
    expect((await h.sidecar.reloadPolicy())?.message).toMatch(/invalid YAML/);
    h.writePolicy(policy('4', '/v4/**').replace('public: true', 'public: true\n        colour: blue'));
    expect((await h.sidecar.reloadPolicy())?.message).toMatch(/unknown field "colour"/);
    h.writePolicy(policy('5', '/v5/**').replace('public: true', 'roles: [ghost]'));
    expect((await h.sidecar.reloadPolicy())?.message).toMatch(/names role "ghost"/);
    expect(h.sidecar.policy()).toBe(before);
    expect((await send(a, `${h.base}/v2/ok`)).status).toBe(200);
  });
});

describe('ConfigMap symlink swap', () => {
  it('refuses to start without a valid policy (fail closed)', async () => {
    await expect(startHarness('')).rejects.toThrow(/POLICY|policy/);
  });

  it('picks up a policy published by swapping the ..data symlink', async () => {
    // Lay out the directory the way the kubelet does: policy.yaml -> ..data/policy.yaml, ..data -> ..v1
    const dir = mkdtempSync(join(tmpdir(), 'palisade-cm-'));
    mkdirSync(join(dir, '..v1'));
    writeFileSync(join(dir, '..v1', 'policy.yaml'), policy('cm1', '/cm1/**'));
    symlinkSync('..v1', join(dir, '..data'));
    symlinkSync('..data/policy.yaml', join(dir, 'policy.yaml'));
    const hc = await startHarness(policy('unused', '/unused'), { env: { PALISADE_POLICY: join(dir, 'policy.yaml') } });
    try {
      const a = await hc.client('spiffe://test.local/ns/cm/sa/x');
      expect((await send(a, `${hc.base}/cm1/a`)).status).toBe(200);
      expect((await send(a, `${hc.base}/cm2/a`)).status).toBe(403);
      mkdirSync(join(dir, '..v2'));
      writeFileSync(join(dir, '..v2', 'policy.yaml'), policy('cm2', '/cm2/**'));
      symlinkSync('..v2', join(dir, '..data_tmp'));
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
      await until(() => hc.sidecar.policy()!.version === 'cm2', 15_000);
      expect((await send(a, `${hc.base}/cm2/a`)).status).toBe(200);
      expect((await send(a, `${hc.base}/cm1/a`)).status).toBe(403);
    } finally {
      await hc.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
