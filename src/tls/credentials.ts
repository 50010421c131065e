/**
 * Server certificate, key and client trust bundle, reloaded when their files
 * change. Under cert-manager or SPIRE they rotate often (hourly), and a
 * Kubernetes Secret volume swaps them with a symlink rename, so the directory
 * is watched (not the file), and a periodic check backs the watcher up.
 * A new secure context applies to new handshakes only: open connections keep
 * theirs, so nothing is dropped. A broken set (key does not match, bad PEM)
 * is refused and the previous one stays.
 */
import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { watchFilter } from '../util/watch-filter.ts';
import { createSecureContext, type SecureContextOptions } from 'node:tls';

export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

export interface LoadedCredentials {
  readonly options: SecureContextOptions;
  /** Hash of the three files, to tell whether anything changed. */
  readonly digest: string;
}

export function readCredentials(files: TlsFiles): LoadedCredentials {
  const cert = readFileSync(files.cert);
  const key = readFileSync(files.key);
  const ca = readFileSync(files.ca);
  const options: SecureContextOptions = { cert, key, ca };
  // Throws on a mismatched key or unparsable PEM, before anything is applied.
  createSecureContext(options);
  const digest = createHash('sha256').update(cert).update(key).update(ca).digest('hex');
  return { options, digest };
}

export interface CredentialWatcher {
  close(): void;
}

/**
 * Calls `apply` with new credentials whenever the files change to a valid set;
 * `onError` when a change is refused. Polls every `pollMs` as a safety net.
 */
export function watchCredentials(
  files: TlsFiles,
  current: LoadedCredentials,
  apply: (c: LoadedCredentials) => void,
  onError: (err: Error) => void,
  pollMs = 5000,
): CredentialWatcher {
  let digest = current.digest;
  let timer: NodeJS.Timeout | null = null;
  const check = () => {
    timer = null;
    let next: LoadedCredentials;
    try {
      next = readCredentials(files);
    } catch (err) {
      // Mid-rotation the files can be briefly inconsistent; the next event or poll retries.
      onError(err as Error);
      return;
    }
    if (next.digest === digest) return;
    digest = next.digest;
    apply(next);
  };
  const schedule = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(check, 100);
  };
  const watchers: FSWatcher[] = [];
  const relevant = watchFilter([files.cert, files.key, files.ca]);
  for (const dir of new Set([dirname(files.cert), dirname(files.key), dirname(files.ca)])) {
    try {
      const w = watch(dir, { persistent: false }, (_event, filename) => {
        if (relevant(filename)) schedule();
      });
      w.on('error', () => undefined);
      watchers.push(w);
    } catch {
      // Directory not watchable (some volume types): polling still covers it.
    }
  }
  const poll = setInterval(check, pollMs);
  poll.unref();
  return {
    close() {
      clearInterval(poll);
      if (timer) clearTimeout(timer);
      for (const w of watchers) w.close();
    },
  };
}
