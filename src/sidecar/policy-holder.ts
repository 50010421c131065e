/**
 * The policy in force: read, hashed, compiled and watched in one place. The file is read
 * once per reload (readPolicyText, the same read and the same POLICY_UNREADABLE message as
 * `palisade policy check`), hashed, and compiled only when its bytes changed. A refused
 * file (unreadable, invalid) leaves the previous policy in force, is logged once, and is
 * not re-reported on every poll while it stays the same.
 *
 * Signed policies (src/policy/signature.ts): with trusted keys configured, the signature beside
 * the file (FILE.sig) is verified over the exact bytes read, before anything is parsed or
 * compiled, so a policy that does not verify never reaches the request path nor the services.
 * The signature and key files are watched too, and their bytes are part of the change hash: a
 * signature that arrives after its policy (two files written one after the other) applies it.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Services } from '../pipeline/services.ts';
import type { CompiledPolicy } from '../policy/compiled.ts';
import { PalisadeError } from '../errors/codes.ts';
import { compilePolicyText, readPolicyBytes } from '../policy/load.ts';
import { loadTrustedKeys, signaturePathOf, UNVERIFIED, verifyBlob, type PolicySignature } from '../policy/signature.ts';
import { watchPolicyFile } from '../policy/watch.ts';
import { releaseMemory } from '../util/release-memory.ts';

/**
 * A policy file this large or larger is followed by a memory-reducing collection once loaded:
 * 256 KiB of JSON is ~5,000 block entries, whose load grows the heap by ~10 MiB for a moment.
 */
const RELEASE_AFTER_BYTES = 256 * 1024;

/** Which keys may sign the policy, and whether a signature is required (settings PALISADE_POLICY_*). */
export interface SignaturePolicy {
  /** PEM files of trusted public keys; empty = signatures not checked. */
  readonly keyFiles: readonly string[];
  /** Refuse a policy that has no valid signature by one of the keys. */
  readonly required: boolean;
}

export interface PolicyHolderOptions {
  readonly file: string;
  readonly services: Services;
  readonly logger: Logger;
  readonly onLoaded?: (policy: CompiledPolicy) => void;
  readonly onRefused?: (error: Error) => void;
  readonly signatures?: SignaturePolicy;
}

/** The last policy refused, for /readyz and the fleet status: its stable code and why. */
export interface PolicyRefusal {
  readonly code: string;
  readonly reason: string;
  /** Unix time, milliseconds. */
  readonly at: number;
}

export interface PolicyHolder {
  /** The policy in force; a request reads it once and keeps it to its end. */
  current(): CompiledPolicy | null;
  /** The last refusal since the policy in force was loaded, or null. */
  lastRefusal(): PolicyRefusal | null;
  /** Re-reads the file now. Resolves to the error if it was refused (the previous policy stays). */
  reload(): Promise<Error | null>;
  /** Stops watching the file. */
  close(): void;
}

/** Loads the policy (throws its error if the first load is refused) and watches the file for changes. */
export async function startPolicyHolder(options: PolicyHolderOptions): Promise<PolicyHolder> {
  const { file, services, logger } = options;
  const sig: SignaturePolicy = options.signatures ?? { keyFiles: [], required: false };
  if (sig.required && sig.keyFiles.length === 0) {
    throw new PalisadeError('CONFIG_INVALID', 'PALISADE_POLICY_REQUIRE_SIGNATURE is true but PALISADE_POLICY_PUBLIC_KEYS names no key file: set it to the PEM public key(s) the policy is signed with');
  }
  const sigFile = signaturePathOf(file);
  const checking = sig.keyFiles.length > 0;
  let policy: CompiledPolicy | null = null;
  let refusal: PolicyRefusal | null = null;
  // Hash of the bytes last read (policy, signature, keys; loaded or refused): unchanged files are not compiled, or reported, again.
  let textHash = '';

  function refuse(e: Error): Error {
    refusal = { code: (e as PalisadeError).code ?? 'POLICY_INVALID', reason: e.message, at: Date.now() };
    options.onRefused?.(e);
    return e;
  }

  /** The signature text beside the policy, or null when there is none. */
  async function readSignature(): Promise<string | null> {
    try {
      return await readFile(sigFile, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return null;
      throw new PalisadeError('POLICY_SIGNATURE_MISSING', `${sigFile}: cannot read the signature file: ${code ?? (err as Error).message}`);
    }
  }

  // One reload at a time, in order: a slow one (a large policy compiling) must not finish after,
  // and overwrite, a newer one that the watcher or an operator started meanwhile.
  let queue: Promise<unknown> = Promise.resolve();
  function reload(): Promise<Error | null> {
    const next = queue.then(reloadNow);
    queue = next.catch(() => undefined);
    return next;
  }

  async function reloadNow(): Promise<Error | null> {
    let bytes: Buffer;
    let sigText: string | null = null;
    let keyFilesText = '';
    let keys: Awaited<ReturnType<typeof loadTrustedKeys>> = [];
    try {
      bytes = await readPolicyBytes(file);
      if (checking) {
        sigText = await readSignature();
        keys = await loadTrustedKeys(sig.keyFiles);
        keyFilesText = keys.map((k) => k.keyId).join(',');
      }
    } catch (err) {
      const e = err as PalisadeError;
      // The same failure is reported once, like the same bad bytes.
      const hash = `error:${e.code}:${e.message}`;
      if (hash === textHash) return null;
      textHash = hash;
      if (policy) logger.error({ code: e.code, err: e.message }, 'policy file unreadable; previous policy stays in force');
      return refuse(e);
    }
    const hash = createHash('sha256').update(bytes).update('\0').update(sigText ?? '').update('\0').update(keyFilesText).digest('hex');
    if (hash === textHash) return null;
    textHash = hash;
    try {
      let signature: PolicySignature = UNVERIFIED;
      if (sigText === null && sig.required) {
        throw new PalisadeError('POLICY_SIGNATURE_MISSING', `${file}: signatures are required (PALISADE_POLICY_REQUIRE_SIGNATURE) and there is no ${sigFile}; sign the policy (palisade policy sign, or cosign sign-blob) and publish the signature beside it`);
      }
      // A signature that is there is always checked: a bad one is never ignored, required or not.
      if (sigText !== null && checking) signature = { verified: true, keyId: verifyBlob(bytes, sigText, keys, sigFile).keyId };
      const next = await compilePolicyText(bytes.toString('utf8'), file, services, signature);
      const previous = policy;
      policy = next; // atomic: a request holds the policy it started with
      refusal = null;
      logger.info({ policy: next.name, version: next.version, hash: next.hash, previous: previous?.hash ?? null, verified: signature.verified, keyId: signature.keyId }, 'policy loaded');
      options.onLoaded?.(next);
      // The load's garbage and the previous policy are dead now: give their pages back
      // (src/util/release-memory.ts). Only after a large policy: the collection stops this thread
      // for 0.1-0.4 s (measured on the loaded 2-core machine), a pause in-flight requests would see,
      // while a small policy's load leaves little to give back.
      if (bytes.length >= RELEASE_AFTER_BYTES) releaseMemory();
      return null;
    } catch (err) {
      const e = err as Error;
      logger.error({ code: (err as PalisadeError).code ?? 'POLICY_INVALID', err: e.message, hash: policy?.hash ?? null }, 'policy refused; previous policy stays in force');
      return refuse(e);
    }
  }

  const initialError = await reload();
  if (initialError) throw initialError;
  // The signature and the keys can change on their own (a signature published after its policy, a key rotated).
  const watched = [file, ...(checking ? [sigFile, ...sig.keyFiles] : [])];
  const watchers = watched.map((f) => watchPolicyFile(f, () => void reload()));
  return {
    current: () => policy,
    lastRefusal: () => refusal,
    reload,
    close: () => {
      for (const w of watchers) w.close();
    },
  };
}
