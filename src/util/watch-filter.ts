/**
 * Directory watches (needed to see a Kubernetes volume's symlink swap) report
 * every file in the directory. Only the watched files' own names, and the
 * kubelet's atomic-writer entries ("..data", "..2026_11_27_…"), are worth a
 * re-read: a decisions file or a log written beside the policy must not make
 * the sidecar re-read and re-hash its policy or certificates on every write.
 */
import { basename } from 'node:path';

export function watchFilter(paths: readonly string[]): (filename: string | Buffer | null) => boolean {
  const names = new Set(paths.map((p) => basename(p)));
  return (filename) => {
    if (filename === null) return true; // the platform did not say which: check
    const name = filename.toString();
    return names.has(name) || name.startsWith('..');
  };
}
