/**
 * Hot reload of the policy file. Watches the file's directory, because a
 * Kubernetes ConfigMap volume updates by swapping a `..data` symlink, which a
 * watch on the file itself never sees. Changes are debounced; an unchanged
 * hash is ignored; a polling check backs up the watcher on filesystems that
 * do not deliver events.
 *
 * The poll only stats the path and calls onChange when what it finds differs
 * from the last stat: onChange reads and hashes the whole file (about 10 ms
 * of event loop for a 4 MB policy), which every 5 s under load is a stall
 * for nothing, as the file almost never changes.
 */
import { stat, statSync, watch, type FSWatcher, type Stats } from 'node:fs';
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
  // The first poll compares with the stat taken now, synchronously, so that
  // the window since the caller read the file is as short as it can be here.
  let last: string;
  try {
    last = identity(null, statSync(path));
  } catch (err) {
    last = identity(err as NodeJS.ErrnoException);
  }
  let closed = false;
  let statting = false;
  const check = () => {
    // Later stats are asynchronous: a hung network mount must not block the
    // event loop. One still pending is not queued behind.
    if (statting) return;
    statting = true;
    stat(path, (err, st) => {
      statting = false;
      if (closed) return;
      const now = identity(err, st);
      if (now === last) return;
      last = now;
      onChange();
    });
  };
  const poll = setInterval(check, options.pollMs ?? 5000);
  poll.unref();
  return {
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      clearInterval(poll);
      watcher?.close();
    },
  };
}

/**
 * What says that the file may have changed. stat follows symlinks, so a
 * ConfigMap update (the `..data` symlink swapped to a new directory) shows as
 * a new dev/ino; an in-place rewrite shows in mtime/ctime even when the size
 * stays. (A rewrite within the filesystem's timestamp granularity of the
 * previous poll, with the same size and inode, is the directory watcher's to
 * see.) A missing or unreadable file is a state too: its appearing or going
 * away is reported, the sidecar then says why it cannot read it, once.
 */
function identity(err: NodeJS.ErrnoException | null, st?: Stats): string {
  if (err || !st) return `error:${err?.code ?? err?.message ?? 'none'}`;
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}
