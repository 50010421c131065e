/**
 * Policy signatures in cosign's sign-blob key-pair format. Interoperability is checked with the
 * real openssl both ways (openssl-made signatures verify here, ours verify with `openssl dgst
 * -verify`), plus a fixed vector made by openssl (test/fixtures/policy-signature).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PalisadeError } from '../../src/errors/codes.ts';
import { decodeSignature, keyIdOf, keyPathsOf, loadTrustedKeys, parsePrivateKey, parsePublicKeys, signBlob, verifyBlob, type TrustedKey } from '../../src/policy/signature.ts';

const dir = mkdtempSync(join(tmpdir(), 'palisade-sig-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const fixtures = new URL('../fixtures/policy-signature/', import.meta.url);

function pair() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pub = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  return { privateKey, pub, trusted: parsePublicKeys(pub, 'test.pub')[0]! };
}

function refusal(f: () => unknown): PalisadeError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(PalisadeError);
    return err as PalisadeError;
  }
  throw new Error('accepted');
}

const policy = Buffer.from('apiVersion: palisade.dev/v1\nkind: Policy\nmetadata: { name: demo, version: "1" }\n');

describe('sign and verify', () => {
  const a = pair();
  const b = pair();

  it('a signature verifies with the key it was made with, and names it', () => {
    const sig = signBlob(policy, a.privateKey);
    expect(sig).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
    expect(verifyBlob(policy, sig, [a.trusted], 'p.yaml.sig').keyId).toBe(a.trusted.keyId);
    // A final newline (as cosign and base64(1) write) is fine.
    expect(verifyBlob(policy, `${sig}\n`, [a.trusted], 'p.yaml.sig').keyId).toBe(a.trusted.keyId);
  });

  it('one byte changed after signing is refused, naming the keys tried', () => {
    const sig = signBlob(policy, a.privateKey);
    const tampered = Buffer.from(policy);
    tampered[tampered.length - 3] = tampered[tampered.length - 3]! ^ 0x01;
    const e = refusal(() => verifyBlob(tampered, sig, [a.trusted], 'p.yaml.sig'));
    expect(e.code).toBe('POLICY_SIGNATURE_INVALID');
    expect(e.message).toContain(a.trusted.keyId);
    expect(e.message).toMatch(/changed after it was signed/);
  });

  it('a signature by a key that is not trusted is refused', () => {
    const sig = signBlob(policy, b.privateKey);
    const e = refusal(() => verifyBlob(policy, sig, [a.trusted], 'p.yaml.sig'));
    expect(e.code).toBe('POLICY_SIGNATURE_INVALID');
    expect(e.message).toMatch(/not trusted/);
  });

  it('rotation: with two trusted keys, either signs; the key id says which', () => {
    const both = [a.trusted, b.trusted];
    expect(verifyBlob(policy, signBlob(policy, a.privateKey), both, 's').keyId).toBe(a.trusted.keyId);
    expect(verifyBlob(policy, signBlob(policy, b.privateKey), both, 's').keyId).toBe(b.trusted.keyId);
    expect(a.trusted.keyId).not.toBe(b.trusted.keyId);
  });

  it('no trusted key verifies nothing', () => {
    expect(refusal(() => verifyBlob(policy, signBlob(policy, a.privateKey), [], 's')).code).toBe('POLICY_SIGNATURE_INVALID');
  });

  it('malformed signature files are told apart from signatures that do not verify', () => {
    for (const text of ['', '  \n', 'not base64!', 'AAAA', Buffer.from('a'.repeat(70)).toString('base64'), 'A'.repeat(2000)]) {
      expect(refusal(() => decodeSignature(text, 's')).code, JSON.stringify(text.slice(0, 20))).toBe('POLICY_SIGNATURE_MALFORMED');
    }
  });
});

describe('keys', () => {
  it('the key id is the first 16 hex digits of the SHA-256 of the SPKI DER (as openssl computes it)', () => {
    const pubFile = join(dir, 'id.pub');
    const a = pair();
    writeFileSync(pubFile, a.pub);
    const der = execFileSync('openssl', ['pkey', '-pubin', '-in', pubFile, '-outform', 'DER']);
    const sha = execFileSync('openssl', ['dgst', '-sha256', '-r'], { input: der }).toString().slice(0, 16);
    expect(a.trusted.keyId).toBe(sha);
    expect(keyIdOf(a.trusted.key)).toMatch(/^[0-9a-f]{16}$/);
  });

  it('a PEM file may hold several public keys; files are read in order, duplicates once', async () => {
    const a = pair();
    const b = pair();
    writeFileSync(join(dir, 'two.pub'), `${a.pub}\n${b.pub}`);
    writeFileSync(join(dir, 'a.pub'), a.pub);
    const keys = await loadTrustedKeys(keyPathsOf(` ${join(dir, 'two.pub')}, ,${join(dir, 'a.pub')}`));
    expect(keys.map((k: TrustedKey) => k.keyId)).toEqual([a.trusted.keyId, b.trusted.keyId]);
  });

  it('unusable key files are refused with the file and the fix', async () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    expect(refusal(() => parsePublicKeys(rsa, 'rsa.pub')).message).toMatch(/rsa.pub: the public key is rsa; policy signatures are ECDSA P-256/);
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    expect(refusal(() => parsePublicKeys(p384, 'k.pub')).message).toMatch(/secp384r1/);
    const priv = pair().privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    expect(refusal(() => parsePublicKeys(priv, 'k.pub')).message).toMatch(/private key; give the public key/);
    expect(refusal(() => parsePublicKeys('hello', 'k.pub')).message).toMatch(/no PEM "PUBLIC KEY" block/);
    await expect(loadTrustedKeys([join(dir, 'absent.pub')])).rejects.toThrow(/PALISADE_POLICY_PUBLIC_KEYS: cannot read public key file .*absent.pub: ENOENT/);
  });

  it('private keys for signing: PKCS#8 and SEC1 P-256; cosign encrypted keys get the fix', () => {
    const k = pair().privateKey;
    expect(parsePrivateKey(k.export({ type: 'pkcs8', format: 'pem' }) as string, 'k').asymmetricKeyType).toBe('ec');
    expect(parsePrivateKey(k.export({ type: 'sec1', format: 'pem' }) as string, 'k').asymmetricKeyType).toBe('ec');
    const cosignKey = '-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\neyJrZGYiOnt9fQ==\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n';
    expect(refusal(() => parsePrivateKey(cosignKey, 'cosign.key')).message).toMatch(/cosign sign-blob/);
  });
});

describe('interoperability with openssl (cosign sign-blob format)', () => {
  function opensslKey(): { keyFile: string; pubFile: string } {
    const keyFile = join(dir, `k${Math.random().toString(36).slice(2)}.pem`);
    const pubFile = `${keyFile}.pub`;
    execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyFile]);
    execFileSync('openssl', ['pkey', '-in', keyFile, '-pubout', '-out', pubFile]);
    return { keyFile, pubFile };
  }

  it('a signature made by openssl verifies in Palisade', () => {
    const { keyFile, pubFile } = opensslKey();
    const file = join(dir, 'o.yaml');
    writeFileSync(file, policy);
    const der = execFileSync('openssl', ['dgst', '-sha256', '-sign', keyFile, file]);
    const keys = parsePublicKeys(readFileSync(pubFile, 'utf8'), pubFile);
    expect(verifyBlob(policy, der.toString('base64'), keys, 's').keyId).toBe(keys[0]!.keyId);
  });

  it('a signature made by Palisade verifies with openssl dgst -verify; a tampered file does not', () => {
    const { keyFile, pubFile } = opensslKey();
    const key: KeyObject = parsePrivateKey(readFileSync(keyFile, 'utf8'), keyFile);
    const file = join(dir, 'p.yaml');
    const sigFile = join(dir, 'p.sig.der');
    writeFileSync(file, policy);
    writeFileSync(sigFile, Buffer.from(signBlob(policy, key), 'base64'));
    const ok = spawnSync('openssl', ['dgst', '-sha256', '-verify', pubFile, '-signature', sigFile, file]);
    expect(ok.stdout.toString().trim()).toBe('Verified OK');
    expect(ok.status).toBe(0);
    writeFileSync(file, Buffer.concat([policy, Buffer.from(' ')]));
    const bad = spawnSync('openssl', ['dgst', '-sha256', '-verify', pubFile, '-signature', sigFile, file]);
    expect(bad.status).not.toBe(0);
  });

  it('the fixed openssl vector verifies, and fails on one byte changed', () => {
    const blob = readFileSync(new URL('policy.yaml', fixtures));
    const sig = readFileSync(new URL('policy.yaml.sig', fixtures), 'utf8');
    const keys = parsePublicKeys(readFileSync(new URL('signer.pub', fixtures), 'utf8'), 'signer.pub');
    expect(verifyBlob(blob, sig, keys, 's').keyId).toBe('90fc66c516105e79');
    const tampered = Buffer.from(blob);
    tampered[0] = tampered[0]! ^ 0x20;
    expect(refusal(() => verifyBlob(tampered, sig, keys, 's')).code).toBe('POLICY_SIGNATURE_INVALID');
  });
});
