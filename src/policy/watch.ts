/**
 * Hot reload of the policy file. Watches the file's directory, because a
 * Kubernetes ConfigMap volume updates by swapping a `..data` symlink, which a
 * watch on the file itself never sees. Changes are debounced; an unchanged
 * hash is ignored; a polling check backs up the watcher on filesystems that
 * do not deliver events.
 */
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { watchFilter } from '../util/watch-filter.ts';

export interface PolicyWatcher {
  close(): void;
}

export function watchPolicyFile(path: string, onChange: () => void, options: { debounceMs?: number; pollMs?: number } = {}): PolicyWatcher {
  const debounceMs = options.debounceMs ?? 200;
  let timer: NodeJS.Timeout | null = null;
  const fire = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      onChange();
    }, debounceMs);
  };
  let watcher: FSWatcher | null = null;
  try {
    const relevant = watchFilter([path]);
    watcher = watch(dirname(path), { persistent: false }, (_event, filename) => {
      if (relevant(filename)) fire();
    });
    watcher.on('error', () => undefined);
  } catch {
    watcher = null;
  }
  const poll = setInterval(onChange, options.pollMs ?? 5000);
  poll.unref();
  return {
    close() {
      if (timer) clearTimeout(timer);
      clearInterval(poll);
      watcher?.close();
    },
  };
}
