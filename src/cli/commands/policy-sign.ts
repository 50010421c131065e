/**
 * `palisade policy sign FILE --key KEY.pem [--output-signature FILE.sig]`
 * `palisade policy verify FILE [--key PUB.pem]... [--signature FILE.sig] [-o json|yaml]`
 *
 * For teams without cosign: the same signatures as `cosign sign-blob` / `cosign verify-blob`
 * with a key pair (src/policy/signature.ts), so either tool checks what the other made.
 * `verify` is exactly the check the sidecar makes before it applies a policy.
 */
import { createPublicKey } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { PalisadeError } from '../../errors/codes.ts';
import { keyIdOf, keyPathsOf, loadTrustedKeys, parsePrivateKey, signaturePathOf, signBlob, verifyBlob, type TrustedKey } from '../../policy/signature.ts';
import { CommandFailed, EXIT_OK, formatOutput, parseCommand, UsageError, type Subcommand } from '../args.ts';

async function readOr(command: string, path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new CommandFailed(command, `cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export const sign: Subcommand = {
  summary: 'sign a policy file (cosign sign-blob format: ECDSA P-256, base64) into FILE.sig',
  async run(argv) {
    const name = 'palisade policy sign';
    const { values, positionals } = parseCommand(argv, {
      name,
      usage: `usage: ${name} FILE --key KEY.pem [--output-signature PATH]

Signs the exact bytes of FILE with an ECDSA P-256 private key and writes the signature as
cosign sign-blob does: base64 of the DER signature over the SHA-256 of the file. The sidecar
(and "cosign verify-blob --key") check it against the public key.

      --key PATH            unencrypted PEM private key, PKCS#8 ("PRIVATE KEY") or SEC1
                            ("EC PRIVATE KEY"), P-256; create one with
                            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out policy-signing.key
                            (cosign's encrypted keys: use cosign sign-blob instead)
      --output-signature PATH
                            where to write the signature (default FILE.sig; "-" = stdout)
`,
      options: { key: { type: 'string' }, 'output-signature': { type: 'string' } },
      positionals: { min: 1, max: 1, name: 'policy file' },
    });
    const file = positionals[0] as string;
    if (values.key === undefined) throw new UsageError(name, '--key is required (the PEM private key to sign with)');
    const blob = await readOr(name, file, 'policy file');
    const keyPem = (await readOr(name, values.key, 'private key')).toString('utf8');
    let signature: string;
    let keyId: string;
    try {
      const key = parsePrivateKey(keyPem, values.key);
      signature = signBlob(blob, key);
      // The key id of the matching public key: what the sidecar will report as the signer.
      keyId = keyIdOf(createPublicKey(key));
    } catch (err) {
      throw new CommandFailed(name, (err as Error).message);
    }
    const out = values['output-signature'] ?? signaturePathOf(file);
    if (out === '-') {
      process.stdout.write(`${signature}\n`);
    } else {
      try {
        await writeFile(out, `${signature}\n`);
      } catch (err) {
        throw new CommandFailed(name, `cannot write ${out}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      process.stdout.write(`signed ${file} with key id ${keyId}: ${out}\n`);
    }
    return EXIT_OK;
  },
};

export const verify: Subcommand = {
  summary: 'check a policy file\'s signature against trusted public keys, as the sidecar does',
  async run(argv) {
    const name = 'palisade policy verify';
    const { values, positionals, output } = parseCommand(argv, {
      name,
      usage: `usage: ${name} FILE [--key PUB.pem]... [--signature PATH]

Checks that FILE's signature (cosign sign-blob format) verifies against one of the trusted
public keys, exactly as the sidecar does before it applies a policy. Exit 0 and the key id
that verified it; exit 1 with the reason (no signature, malformed, changed after signing or
signed by a key that is not trusted).

      --key PATH            a PEM file of trusted public keys (cosign.pub, or openssl pkey -pubout);
                            repeat for several (default: PALISADE_POLICY_PUBLIC_KEYS)
      --signature PATH      the signature file (default FILE.sig)
`,
      options: { key: { type: 'string', multiple: true }, signature: { type: 'string' } },
      positionals: { min: 1, max: 1, name: 'policy file' },
      output: true,
    });
    const file = positionals[0] as string;
    const keyFiles = values.key ?? keyPathsOf(process.env['PALISADE_POLICY_PUBLIC_KEYS'] ?? '');
    if (keyFiles.length === 0) throw new UsageError(name, 'name the trusted public keys: --key PUB.pem (or set PALISADE_POLICY_PUBLIC_KEYS)');
    const sigFile = values.signature ?? signaturePathOf(file);
    let keys: TrustedKey[];
    try {
      keys = await loadTrustedKeys(keyFiles, '--key');
    } catch (err) {
      throw new CommandFailed(name, (err as Error).message);
    }
    const blob = await readOr(name, file, 'policy file');
    let sigText: string;
    try {
      sigText = await readFile(sigFile, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new CommandFailed(name, `POLICY_SIGNATURE_MISSING: ${sigFile}: ${code === 'ENOENT' ? 'no signature file; sign the policy (palisade policy sign, or cosign sign-blob)' : `cannot read: ${code ?? (err as Error).message}`}`);
    }
    let signer: TrustedKey;
    try {
      signer = verifyBlob(blob, sigText, keys, sigFile);
    } catch (err) {
      const e = err as PalisadeError;
      throw new CommandFailed(name, `${e.code}: ${e.message}`);
    }
    const result = { file, signature: sigFile, verified: true, keyId: signer.keyId, keyFile: signer.source };
    process.stdout.write(formatOutput(output, result, () => `verified ${file}: signed by key id ${signer.keyId} (${signer.source})`));
    return EXIT_OK;
  },
};
