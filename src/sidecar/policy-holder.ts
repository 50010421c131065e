/**
 * The policy in force: read, hashed, compiled and watched in one place. The file is read
 * once per reload (readPolicyText, the same read and the same POLICY_UNREADABLE message as
 * `palisade policy check`), hashed, and compiled only when its bytes changed. A refused
 * file (unreadable, invalid) leaves the previous policy in force, is logged once, and is
 * not re-reported on every poll while it stays the same.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { PalisadeError } from '../errors/codes.ts';
import type { Services } from '../pipeline/services.ts';
import type { CompiledPolicy } from '../policy/compiled.ts';
import { compilePolicyText, readPolicyText } from '../policy/load.ts';
import { watchPolicyFile } from '../policy/watch.ts';

export interface PolicyHolderOptions {
  readonly file: string;
  readonly services: Services;
  readonly logger: Logger;
  readonly onLoaded?: (policy: CompiledPolicy) => void;
  readonly onRefused?: (error: Error) => void;
}

export interface PolicyHolder {
  /** The policy in force; a request reads it once and keeps it to its end. */
  current(): CompiledPolicy | null;
  /** Re-reads the file now. Resolves to the error if it was refused (the previous policy stays). */
  reload(): Promise<Error | null>;
  /** Stops watching the file. */
  close(): void;
}

/** Loads the policy (throws its error if the first load is refused) and watches the file for changes. */
export async function startPolicyHolder(options: PolicyHolderOptions): Promise<PolicyHolder> {
  const { file, services, logger } = options;
  let policy: CompiledPolicy | null = null;
  // Hash of the bytes last read (loaded or refused): an unchanged file is not compiled, or reported, again.
  let textHash = '';

  async function reload(): Promise<Error | null> {
    let text: string;
    try {
      text = await readPolicyText(file);
    } catch (err) {
      const e = err as PalisadeError;
      if (policy) logger.error({ code: e.code, err: e.message }, 'policy file unreadable; previous policy stays in force');
      options.onRefused?.(e);
      return e;
    }
    const hash = createHash('sha256').update(text).digest('hex');
    if (hash === textHash) return null;
    textHash = hash;
    try {
      const next = await compilePolicyText(text, file, services);
      const previous = policy;
      policy = next; // atomic: a request holds the policy it started with
      logger.info({ policy: next.name, version: next.version, hash: next.hash, previous: previous?.hash ?? null }, 'policy loaded');
      options.onLoaded?.(next);
      return null;
    } catch (err) {
      const e = err as Error;
      logger.error({ code: (err as PalisadeError).code ?? 'POLICY_INVALID', err: e.message, hash: policy?.hash ?? null }, 'policy refused; previous policy stays in force');
      options.onRefused?.(e);
      return e;
    }
  }

  const initialError = await reload();
  if (initialError) throw initialError;
  const watcher = watchPolicyFile(file, () => void reload());
  return {
    current: () => policy,
    reload,
    close: () => watcher.close(),
  };
}
