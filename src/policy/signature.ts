/**
 * Policy signatures in cosign's `sign-blob` key-pair format, so a policy can be signed by the
 * same pipeline step that signs container images, and checked by cosign or by Palisade alike:
 *
 * - the signature is ECDSA P-256 over the SHA-256 of the file's exact bytes, DER-encoded
 *   (ASN.1 SEQUENCE of r and s), written as base64 text (what `cosign sign-blob
 *   --output-signature` writes; surrounding whitespace and a final newline are accepted);
 * - the public key is a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), as `cosign generate-key-pair`
 *   writes `cosign.pub`;
 * - the signature sits beside the policy, under the policy's name plus `.sig`.
 *
 * A key is named by its key id: the first 16 hex digits of the SHA-256 of its SPKI DER, so two
 * teams computing it from the same PEM get the same id (`openssl pkey -pubin -outform DER |
 * sha256sum`), and no key material is ever needed to say which key signed.
 *
 * For signing, `palisade policy sign` takes an unencrypted PKCS#8 (`PRIVATE KEY`) or SEC1
 * (`EC PRIVATE KEY`) PEM. cosign's own encrypted key format is not read: sign with cosign
 * itself if that is where the key lives (the signatures are the same format).
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { PalisadeError } from '../errors/codes.ts';

/** A public key policies may be signed with. */
export interface TrustedKey {
  /** First 16 hex digits of sha256(SPKI DER). */
  readonly keyId: string;
  readonly key: KeyObject;
  /** The file it came from, for messages. */
  readonly source: string;
}

/** What is known about the signature of the policy in force. */
export interface PolicySignature {
  /** True when the policy's bytes were verified against a trusted key before it was applied. */
  readonly verified: boolean;
  /** Key id of the trusted key that verified it; null when not verified. */
  readonly keyId: string | null;
}

export const UNVERIFIED: PolicySignature = Object.freeze({ verified: false, keyId: null });

/** The signature file of a policy file: beside it, its name plus `.sig`. */
export function signaturePathOf(policyPath: string): string {
  return `${policyPath}.sig`;
}

/** Key id of a public key: the first 16 hex digits of the SHA-256 of its SPKI DER encoding. */
export function keyIdOf(key: KeyObject): string {
  const der = key.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex').slice(0, 16);
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

function isP256(key: KeyObject): boolean {
  return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
}

/**
 * Every `PUBLIC KEY` block of a PEM text (one file may hold several keys, for rotation).
 * Throws CONFIG_INVALID naming the file when it holds none, or a key that is not ECDSA P-256.
 */
export function parsePublicKeys(pem: string, source: string): TrustedKey[] {
  const keys: TrustedKey[] = [];
  for (const m of pem.matchAll(PEM_BLOCK)) {
    const label = m[1];
    if (label !== 'PUBLIC KEY') {
      const hint = /PRIVATE/.test(label ?? '') ? ': this is a private key; give the public key (openssl pkey -in KEY -pubout)' : '';
      throw new PalisadeError('CONFIG_INVALID', `${source}: a "${label}" PEM block where a PUBLIC KEY was expected${hint}`);
    }
    let key: KeyObject;
    try {
      key = createPublicKey({ key: m[0], format: 'pem' });
    } catch (err) {
      throw new PalisadeError('CONFIG_INVALID', `${source}: unreadable public key (${(err as Error).message}); give a PEM "PUBLIC KEY" (SubjectPublicKeyInfo)`);
    }
    if (!isP256(key)) {
      throw new PalisadeError('CONFIG_INVALID', `${source}: the public key is ${describeKey(key)}; policy signatures are ECDSA P-256 (cosign's key-pair format): generate one with "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256"`);
    }
    keys.push({ keyId: keyIdOf(key), key, source });
  }
  if (keys.length === 0) throw new PalisadeError('CONFIG_INVALID', `${source}: no PEM "PUBLIC KEY" block found; give the public key file (cosign.pub or openssl pkey -pubout)`);
  return keys;
}

function describeKey(key: KeyObject): string {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  return `${key.asymmetricKeyType ?? 'unknown'}${curve ? ` (${curve})` : ''}`;
}

/** Reads the trusted keys from PEM files; throws CONFIG_INVALID naming the file that cannot be used. */
export async function loadTrustedKeys(paths: readonly string[], setting = 'PALISADE_POLICY_PUBLIC_KEYS'): Promise<TrustedKey[]> {
  const keys: TrustedKey[] = [];
  for (const path of paths) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new PalisadeError('CONFIG_INVALID', `${setting}: cannot read public key file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    for (const k of parsePublicKeys(text, path)) if (!keys.some((o) => o.keyId === k.keyId)) keys.push(k);
  }
  return keys;
}

/** The comma-separated list of a setting, blanks dropped. */
export function keyPathsOf(setting: string): string[] {
  return setting
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** Reads a private key PEM for signing; throws CONFIG_INVALID with the fix when it cannot be used. */
export function parsePrivateKey(pem: string, source: string): KeyObject {
  if (/-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----/.test(pem)) {
    throw new PalisadeError('CONFIG_INVALID', `${source}: cosign's encrypted key format is not read by palisade; sign with "cosign sign-blob" (same signature format), or use an unencrypted PKCS#8 P-256 key kept in your CI's secret store`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new PalisadeError('CONFIG_INVALID', `${source}: unreadable private key (${(err as Error).message}); give an unencrypted PEM "PRIVATE KEY" (PKCS#8) or "EC PRIVATE KEY"`);
  }
  if (!isP256(key)) throw new PalisadeError('CONFIG_INVALID', `${source}: the private key is ${describeKey(key)}; policy signatures are ECDSA P-256`);
  return key;
}

/** Signs bytes: base64 of the DER ECDSA P-256 signature over their SHA-256 (cosign sign-blob's output). */
export function signBlob(blob: Uint8Array, privateKey: KeyObject): string {
  return sign('sha256', blob, { key: privateKey, dsaEncoding: 'der' }).toString('base64');
}

// A DER ECDSA P-256 signature is at most 72 bytes (96 base64 characters); anything much larger is not one.
const MAX_SIGNATURE_TEXT = 1024;

/**
 * The signature bytes of a signature file's text. Throws POLICY_SIGNATURE_MALFORMED when the
 * text is not base64 of a DER signature.
 */
export function decodeSignature(text: string, source: string): Buffer {
  const t = text.trim();
  if (t === '') throw new PalisadeError('POLICY_SIGNATURE_MALFORMED', `${source}: the signature file is empty; sign the policy (palisade policy sign, or cosign sign-blob --output-signature)`);
  if (t.length > MAX_SIGNATURE_TEXT || !/^[A-Za-z0-9+/]+={0,2}$/.test(t) || t.length % 4 !== 0) {
    throw new PalisadeError('POLICY_SIGNATURE_MALFORMED', `${source}: not a base64 signature (cosign sign-blob format: base64 of a DER ECDSA signature, on one line)`);
  }
  const der = Buffer.from(t, 'base64');
  // SEQUENCE { INTEGER r, INTEGER s }: starts with 0x30 and its length covers the rest.
  if (der.length < 8 || der[0] !== 0x30 || der[1] !== der.length - 2) {
    throw new PalisadeError('POLICY_SIGNATURE_MALFORMED', `${source}: the base64 text is not a DER ECDSA signature (cosign sign-blob format)`);
  }
  return der;
}

/**
 * Verifies the signature text over the bytes against the trusted keys; returns the key that
 * verifies. Throws POLICY_SIGNATURE_MALFORMED or POLICY_SIGNATURE_INVALID with the reason.
 *
 * A signature alone does not name its key, so "changed after signing" and "signed by a key
 * that is not trusted" cannot be told apart: the message says both, and lists the key ids tried.
 */
export function verifyBlob(blob: Uint8Array, signatureText: string, keys: readonly TrustedKey[], source: string): TrustedKey {
  const der = decodeSignature(signatureText, source);
  for (const k of keys) {
    if (verify('sha256', blob, { key: k.key, dsaEncoding: 'der' }, der)) return k;
  }
  const ids = keys.map((k) => k.keyId).join(', ');
  throw new PalisadeError(
    'POLICY_SIGNATURE_INVALID',
    `${source}: the signature does not verify against any trusted key (${keys.length === 1 ? 'key id' : 'key ids'} ${ids || 'none'}): the policy was changed after it was signed, or it was signed with a key that is not trusted; sign the exact file with a trusted key`,
  );
}
