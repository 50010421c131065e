/**
 * The sidecar verifies the policy's signature before it applies it, at start and at every
 * reload (PALISADE_POLICY_PUBLIC_KEYS, PALISADE_POLICY_REQUIRE_SIGNATURE): valid, tampered by
 * one byte, wrong key, missing signature, rotation with two keys, and a reload with a bad
 * signature under load that no request sees. At start without a valid signed policy the real
 * process does not start.
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request, type Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PalisadeError } from '../../src/errors/codes.ts';
import { keyIdOf, signBlob } from '../../src/policy/signature.ts';
import { createPki, loopbackSidecarEnv, send, startHarness, startUpstream, until, type Harness } from '../support/harness.ts';

const dir = mkdtempSync(join(tmpdir(), 'palisade-signed-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function keyPair(name: string): { priv: KeyObject; pubFile: string; keyId: string; pem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  const pubFile = join(dir, `${name}.pub`);
  writeFileSync(pubFile, pem);
  return { priv: privateKey, pubFile, keyId: keyIdOf(publicKey), pem };
}
const keyA = keyPair('a');
const keyB = keyPair('b');

// v1 lets everyone GET /items/{id}; v2 lets nobody (its only rule is elsewhere): which one a request saw shows in its status.
const policy = (version: string, open: boolean) => `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: signed, version: "${version}" }
spec:
  authorization:
    rules:
      - id: items
        methods: [GET]
        paths: ["${open ? '/items/{id}' : '/elsewhere/{id}'}"]
        public: true
`;

/** Writes the policy, and its signature by `key` (null = no signature file). */
function publish(file: string, text: string, key: KeyObject | null): void {
  writeFileSync(file, text);
  if (key) writeFileSync(`${file}.sig`, `${signBlob(Buffer.from(text), key)}\n`);
  else rmSync(`${file}.sig`, { force: true });
}

async function admin(h: Harness, path: string): Promise<{ status: number; text: string }> {
  const res = await request(`http://127.0.0.1:${h.sidecar.adminPort}${path}`);
  return { status: res.statusCode, text: await res.body.text() };
}

/**
 * Reloads now and says what became of the files on disk: null (applied, or unchanged) or the
 * refusal's code. The watcher may have read the same files first (reloads run one at a time),
 * in which case reloadPolicy finds nothing new and /readyz has the refusal.
 */
async function refusal(h: Harness): Promise<{ code: string; message: string } | null> {
  const e = (await h.sidecar.reloadPolicy()) as PalisadeError | null;
  if (e) return { code: e.code, message: e.message };
  const r = JSON.parse((await admin(h, '/readyz')).text) as { lastRefused?: { code: string; reason: string } };
  return r.lastRefused ? { code: r.lastRefused.code, message: r.lastRefused.reason } : null;
}
const reload = async (h: Harness): Promise<string | null> => (await refusal(h))?.code ?? null;

function metric(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('a sidecar that requires signed policies', () => {
  const file = join(dir, 'policy.yaml');
  const keysFile = join(dir, 'trusted.pub');
  let h: Harness;
  let agent: Agent;
  beforeAll(async () => {
    writeFileSync(keysFile, keyA.pem);
    publish(file, policy('1', true), keyA.priv);
    h = await startHarness('unused: true', { env: { PALISADE_POLICY: file, PALISADE_POLICY_PUBLIC_KEYS: keysFile, PALISADE_POLICY_REQUIRE_SIGNATURE: 'true' } });
    agent = await h.client('spiffe://test.local/ns/a/sa/client');
  });
  afterAll(() => h?.close());

  it('applies a validly signed policy; /readyz, the decision record and the metrics say verified, by which key', async () => {
    expect(h.sidecar.policy()?.signature).toEqual({ verified: true, keyId: keyA.keyId });
    const r = await admin(h, '/readyz');
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text).policy).toMatchObject({ name: 'signed', version: '1', verified: true, keyId: keyA.keyId });
    expect((await send(agent, `${h.base}/items/1`)).status).toBe(200);
    await until(() => h.decisions.length > 0);
    expect(h.decisions.at(-1)?.policy).toMatchObject({ version: '1', keyId: keyA.keyId });
    const m = (await admin(h, '/metrics')).text;
    expect(metric(m, `palisade_policy_signature_verified{key_id="${keyA.keyId}"}`)).toBe(1);
  });

  it('refuses a policy changed after signing (one byte), unsigned, or signed by an untrusted key; the previous one stays', async () => {
    const before = h.sidecar.policy();
    // Tampered: v2's bytes with v1's signature... and, closer still, v1 with one byte changed.
    const v1 = policy('1', true);
    writeFileSync(file, `${v1.slice(0, -2)}${v1.at(-2) === 'e' ? 'E' : 'e'}\n`);
    const tampered = (await refusal(h))!;
    expect(tampered.code).toBe('POLICY_SIGNATURE_INVALID');
    expect(tampered.message).toMatch(/changed after it was signed, or it was signed with a key that is not trusted/);
    expect(h.sidecar.policy()).toBe(before);

    publish(file, policy('2', false), null);
    const missing = (await refusal(h))!;
    expect(missing.code).toBe('POLICY_SIGNATURE_MISSING');
    expect(h.sidecar.policy()).toBe(before);

    publish(file, policy('2', false), keyB.priv);
    const untrusted = (await refusal(h))!;
    expect(untrusted.code).toBe('POLICY_SIGNATURE_INVALID');
    expect(untrusted.message).toContain(keyA.keyId);
    expect(h.sidecar.policy()).toBe(before);

    writeFileSync(`${file}.sig`, 'not a signature\n');
    expect(await reload(h)).toBe('POLICY_SIGNATURE_MALFORMED');
    expect(h.sidecar.policy()).toBe(before);

    expect((await send(agent, `${h.base}/items/1`)).status).toBe(200);
    const r = JSON.parse((await admin(h, '/readyz')).text) as { policy: { version: string }; lastRefused: { code: string } };
    expect(r.policy.version).toBe('1');
    expect(r.lastRefused.code).toBe('POLICY_SIGNATURE_MALFORMED');
    const m = (await admin(h, '/metrics')).text;
    expect(metric(m, 'palisade_policy_signature_refusals_total{code="POLICY_SIGNATURE_INVALID"}')).toBe(2);
    expect(metric(m, 'palisade_policy_signature_refusals_total{code="POLICY_SIGNATURE_MISSING"}')).toBe(1);
    expect(metric(m, 'palisade_policy_signature_refusals_total{code="POLICY_SIGNATURE_MALFORMED"}')).toBe(1);
  });

  it('a signature published after its policy applies it (the .sig file is watched)', async () => {
    writeFileSync(file, policy('3', true));
    // The watcher reloads on its own and refuses: the old signature does not verify the new bytes.
    writeFileSync(`${file}.sig`, `${signBlob(Buffer.from(policy('3', true)), keyA.priv)}\n`);
    await until(() => h.sidecar.policy()?.version === '3', 15_000);
    expect(h.sidecar.policy()?.signature.keyId).toBe(keyA.keyId);
  });

  it('rotation: two trusted keys in the key file; a policy signed by the new key applies and names it', async () => {
    writeFileSync(keysFile, `${keyA.pem}${keyB.pem}`);
    publish(file, policy('4', true), keyB.priv);
    expect(await reload(h)).toBeNull();
    expect(h.sidecar.policy()?.signature).toEqual({ verified: true, keyId: keyB.keyId });
    // The old key still verifies during the overlap.
    publish(file, policy('5', true), keyA.priv);
    expect(await reload(h)).toBeNull();
    expect(h.sidecar.policy()?.signature).toEqual({ verified: true, keyId: keyA.keyId });
    // Old key retired: its signatures are refused.
    writeFileSync(keysFile, keyB.pem);
    publish(file, policy('6', true), keyA.priv);
    expect(await reload(h)).toBe('POLICY_SIGNATURE_INVALID');
    expect(h.sidecar.policy()?.version).toBe('5');
  });

  it('under load, a reload with a bad signature is never seen by a request; the signed one is, at once', async () => {
    publish(file, policy('7', true), keyB.priv);
    expect(await reload(h)).toBeNull();
    const v7 = h.sidecar.policy()!.hash;
    const seen = new Map<number, number>();
    let stop = false;
    const startAt = h.decisions.length;
    const load = Array.from({ length: 4 }, async () => {
      while (!stop) {
        const r = await send(agent, `${h.base}/items/1`).catch((err: unknown) => {
          stop = true;
          throw err;
        });
        seen.set(r.status, (seen.get(r.status) ?? 0) + 1);
      }
    });
    // The closing policy, signed by an untrusted key, then tampered after a valid signature, again and
    // again (a new version each time, so every write is new bytes).
    const refusals: string[] = [];
    for (let i = 0; i < 10; i++) {
      const closing = policy(`8.${i}`, false);
      publish(file, closing, keyA.priv);
      refusals.push((await reload(h)) ?? 'applied');
      expect(h.sidecar.policy()?.hash).toBe(v7);
      // Changed after signing: the trusted key signed a version that is never on disk (a
      // signature by a trusted key over bytes that were on disk at some moment would be a
      // policy the key approved, and rightly applied by a reload that read the two then).
      const signed = closing.replace('elsewhere', 'elsewhera');
      writeFileSync(file, closing);
      writeFileSync(`${file}.sig`, `${signBlob(Buffer.from(signed), keyB.priv)}\n`);
      refusals.push((await reload(h)) ?? 'applied');
      expect(h.sidecar.policy()?.hash).toBe(v7);
    }
    expect(refusals.filter((c) => c !== 'POLICY_SIGNATURE_INVALID'), refusals.join(' ')).toEqual([]);
    await until(() => (seen.get(200) ?? 0) >= 20, 30_000);
    stop = true;
    await Promise.all(load);
    expect([...seen.entries()]).toEqual([[200, seen.get(200)]]);
    await until(() => h.decisions.length - startAt >= [...seen.values()].reduce((a, b) => a + b, 0), 5000);
    const hashes = new Set(h.decisions.slice(startAt).map((d) => d.policy?.hash));
    expect([...hashes]).toEqual([v7]);

    // Now signed by the trusted key: applies, and the next request sees it.
    publish(file, policy('9', false), keyB.priv);
    expect(await reload(h)).toBeNull();
    expect(h.sidecar.policy()?.version).toBe('9');
    expect((await send(agent, `${h.base}/items/1`)).status).toBe(403);
  });
});

describe('signatures not required, keys configured', () => {
  it('an unsigned policy applies unverified; a bad signature is still refused', async () => {
    const file = join(dir, 'optional.yaml');
    publish(file, policy('1', true), null);
    const h = await startHarness('unused: true', { env: { PALISADE_POLICY: file, PALISADE_POLICY_PUBLIC_KEYS: keyA.pubFile } });
    try {
      expect(h.sidecar.policy()?.signature).toEqual({ verified: false, keyId: null });
      const r = JSON.parse((await admin(h, '/readyz')).text) as { policy: Record<string, unknown> };
      expect(r.policy).toMatchObject({ verified: false, keyId: null });
      publish(file, policy('2', true), keyB.priv);
      expect(await reload(h)).toBe('POLICY_SIGNATURE_INVALID');
      publish(file, policy('2', true), keyA.priv);
      expect(await reload(h)).toBeNull();
      expect(h.sidecar.policy()?.signature).toEqual({ verified: true, keyId: keyA.keyId });
    } finally {
      await h.close();
    }
  });
});

describe('the real process fails closed at start', () => {
  async function run(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
    const pki = await createPki(mkdtempSync(join(dir, 'pki-')));
    const upstream = await startUpstream();
    try {
      const child = spawn(process.execPath, ['src/cli/main.ts', 'sidecar'], { env: { PATH: process.env.PATH ?? '', ...loopbackSidecarEnv(pki, upstream.url), PALISADE_LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const code = await new Promise<number | null>((r) => child.once('close', (c) => r(c)));
      return { code, stderr };
    } finally {
      await upstream.close();
    }
  }

  it('unsigned, wrong key, or no key configured: exit 1 with the reason, never listening', async () => {
    const file = join(dir, 'start.yaml');
    publish(file, policy('1', true), null);
    const unsigned = await run({ PALISADE_POLICY: file, PALISADE_POLICY_PUBLIC_KEYS: keyA.pubFile, PALISADE_POLICY_REQUIRE_SIGNATURE: 'true' });
    expect(unsigned.code).toBe(1);
    expect(unsigned.stderr).toMatch(/POLICY_SIGNATURE_MISSING: .*start.yaml: signatures are required/);
    expect(unsigned.stderr).not.toContain('sidecar listening');

    publish(file, policy('1', true), keyB.priv);
    const wrong = await run({ PALISADE_POLICY: file, PALISADE_POLICY_PUBLIC_KEYS: keyA.pubFile, PALISADE_POLICY_REQUIRE_SIGNATURE: 'true' });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/POLICY_SIGNATURE_INVALID/);
    expect(wrong.stderr).not.toContain('sidecar listening');

    const nokey = await run({ PALISADE_POLICY: file, PALISADE_POLICY_REQUIRE_SIGNATURE: 'true' });
    expect(nokey.code).toBe(1);
    expect(nokey.stderr).toMatch(/CONFIG_INVALID: PALISADE_POLICY_REQUIRE_SIGNATURE is true but PALISADE_POLICY_PUBLIC_KEYS names no key file/);
    // The sig file is untouched by any of it.
    expect(readFileSync(`${file}.sig`, 'utf8')).toMatch(/^[A-Za-z0-9+/=]+\n$/);
    unlinkSync(`${file}.sig`);
  });
});
