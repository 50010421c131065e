// `palisade policy sign` / `palisade policy verify`, the real command, with keys made by openssl.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BIN, palisade } from './support/run.ts';

const dir = mkdtempSync(join(tmpdir(), 'palisade-sign-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function keyPair(name: string) {
  const key = join(dir, `${name}.key`);
  const pub = join(dir, `${name}.pub`);
  execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
  execFileSync('openssl', ['pkey', '-in', key, '-pubout', '-out', pub]);
  const der = execFileSync('openssl', ['pkey', '-pubin', '-in', pub, '-outform', 'DER']);
  const keyId = execFileSync('openssl', ['dgst', '-sha256', '-r'], { input: der }).toString().slice(0, 16);
  return { key, pub, keyId };
}

const a = keyPair('a');
const b = keyPair('b');
const policyFile = join(dir, 'policy.yaml');
writeFileSync(policyFile, 'apiVersion: palisade.dev/v1\nkind: Policy\nmetadata:\n  name: signed\n  version: "1"\n');

describe('palisade policy sign / verify', () => {
  it('sign writes FILE.sig (base64 DER) that openssl verifies; verify names the key id', async () => {
    const s = await palisade(['policy', 'sign', policyFile, '--key', a.key]);
    expect(s.stderr).toBe('');
    expect(s.code).toBe(0);
    expect(s.stdout).toBe(`signed ${policyFile} with key id ${a.keyId}: ${policyFile}.sig\n`);
    const der = join(dir, 'sig.der');
    writeFileSync(der, Buffer.from(readFileSync(`${policyFile}.sig`, 'utf8').trim(), 'base64'));
    const o = spawnSync('openssl', ['dgst', '-sha256', '-verify', a.pub, '-signature', der, policyFile]);
    expect(o.stdout.toString().trim()).toBe('Verified OK');

    const v = await palisade(['policy', 'verify', policyFile, '--key', b.pub, '--key', a.pub]);
    expect(v.code).toBe(0);
    expect(v.stdout).toBe(`verified ${policyFile}: signed by key id ${a.keyId} (${a.pub})\n`);
    const j = await palisade(['policy', 'verify', policyFile, '-o', 'json'], { env: { PALISADE_POLICY_PUBLIC_KEYS: `${a.pub},${b.pub}` } });
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toEqual({ file: policyFile, signature: `${policyFile}.sig`, verified: true, keyId: a.keyId, keyFile: a.pub });
  });

  it('verify accepts an openssl-made signature (base64 of openssl dgst -sign)', async () => {
    const f = join(dir, 'o.yaml');
    writeFileSync(f, 'kind: Policy\n');
    writeFileSync(`${f}.sig`, execFileSync('openssl', ['dgst', '-sha256', '-sign', b.key, f]).toString('base64'));
    const v = await palisade(['policy', 'verify', f, '--key', b.pub]);
    expect(v.code).toBe(0);
    expect(v.stdout).toContain(`key id ${b.keyId}`);
  });

  it('verify fails (exit 1) on a tampered file, a wrong key, a missing signature', async () => {
    const f = join(dir, 't.yaml');
    writeFileSync(f, 'kind: Policy\n');
    expect((await palisade(['policy', 'sign', f, '--key', a.key])).code).toBe(0);
    writeFileSync(f, 'kind: Policy \n');
    const t = await palisade(['policy', 'verify', f, '--key', a.pub]);
    expect(t.code).toBe(1);
    expect(t.stdout).toBe('');
    expect(t.stderr).toMatch(/^palisade policy verify: POLICY_SIGNATURE_INVALID: .*changed after it was signed/);
    expect(t.stderr).toContain(a.keyId);

    writeFileSync(f, 'kind: Policy\n');
    expect((await palisade(['policy', 'verify', f, '--key', a.pub])).code).toBe(0);
    const w = await palisade(['policy', 'verify', f, '--key', b.pub]);
    expect(w.code).toBe(1);
    expect(w.stderr).toMatch(/POLICY_SIGNATURE_INVALID.*not trusted/);

    const m = await palisade(['policy', 'verify', f, '--key', a.pub, '--signature', join(dir, 'absent.sig')]);
    expect(m.code).toBe(1);
    expect(m.stderr).toMatch(/POLICY_SIGNATURE_MISSING: .*absent.sig: no signature file/);
  });

  it('strict arguments: --help, missing key, unknown flag, extra argument', async () => {
    const h = await palisade(['policy', 'sign', '--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/^usage: palisade policy sign FILE --key KEY.pem/);
    const n = await palisade(['policy', 'sign', policyFile]);
    expect(n.code).toBe(2);
    expect(n.stderr).toMatch(/--key is required/);
    const u = await palisade(['policy', 'verify', policyFile, '--keys', a.pub]);
    expect(u.code).toBe(2);
    expect(u.stderr).toMatch(/unknown flag --keys/);
    const x = await palisade(['policy', 'verify', policyFile, policyFile, '--key', a.pub]);
    expect(x.code).toBe(2);
    const k = await palisade(['policy', 'verify', policyFile], { env: { PALISADE_POLICY_PUBLIC_KEYS: '' } });
    expect(k.code).toBe(2);
    expect(k.stderr).toMatch(/--key PUB.pem/);
    const p = await palisade(['policy', 'sign', policyFile, '--key', a.pub]);
    expect(p.code).toBe(1);
    expect(p.stderr).toMatch(/unreadable private key/);
  });

  it('the CI step (deploy/ci/sign-policies.sh) signs every policy under a directory and verifies each', () => {
    const tree = mkdtempSync(join(dir, 'tree-'));
    const p = join(tree, 'policy.yaml');
    writeFileSync(p, readFileSync(new URL('../../deploy/k8s/example/policy/policy.yaml', import.meta.url)));
    writeFileSync(join(tree, 'other.yaml'), 'kind: ConfigMap\n');
    const script = new URL('../../deploy/ci/sign-policies.sh', import.meta.url).pathname;
    const r = spawnSync('bash', [script, tree], { env: { ...process.env, PALISADE: `${process.execPath} ${BIN}`, PALISADE_SIGNING_KEY: a.key, PALISADE_POLICY_PUBLIC_KEYS: `${b.pub},${a.pub}` } });
    expect(r.stderr.toString()).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.toString()).toContain(`verified ${p}: signed by key id ${a.keyId}`);
    const der = join(tree, 'sig.der');
    writeFileSync(der, Buffer.from(readFileSync(`${p}.sig`, 'utf8').trim(), 'base64'));
    expect(spawnSync('openssl', ['dgst', '-sha256', '-verify', a.pub, '-signature', der, p]).status).toBe(0);
    // Signed with a key the sidecars do not trust: the step fails.
    const bad = spawnSync('bash', [script, tree], { env: { ...process.env, PALISADE: `${process.execPath} ${BIN}`, PALISADE_SIGNING_KEY: b.key, PALISADE_POLICY_PUBLIC_KEYS: a.pub } });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr.toString()).toMatch(/POLICY_SIGNATURE_INVALID/);
  });
});
