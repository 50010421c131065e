/**
 * Gives the memory a one-off burst of garbage left behind back to the system.
 *
 * Loading a large policy (4 MB of JSON, 100,000 block entries) grows V8's heap
 * to 150-250 MiB for a moment. An ordinary full collection frees the objects
 * but V8 keeps the emptied pages mapped for reuse: measured, the heap went
 * back to 48 MiB while the process kept 310 MiB resident, 40 s later still.
 * Only a memory-reducing ("last resort") collection releases those pages:
 * 310 -> 143 MiB in the same process (bench/policy-load.ts prints both).
 *
 * V8 offers that collection to embedders only (LowMemoryNotification), and
 * Node does not expose it; its `gc()` test function does, with
 * `flavor: 'last-resort'`. The function is taken from a fresh vm context
 * with --expose-gc set for that moment only: it is never put on the global
 * object of the sidecar's own code.
 *
 * It stops the thread for 0.1-0.4 s on the loaded 2-core benchmark machine
 * (a full collection, several times over, even with a 25 MiB heap): call it
 * at start and after a large policy's load, never per request.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type GcFunction = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

let gc: GcFunction | null | undefined;

function gcFunction(): GcFunction | null {
  if (gc === undefined) {
    try {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as GcFunction;
    } catch {
      // A runtime without the test extension: memory is then released by V8 on its own schedule.
      gc = null;
    } finally {
      setFlagsFromString('--no-expose-gc');
    }
  }
  return gc;
}

/** Runs a memory-reducing full collection now; false if this runtime cannot. */
export function releaseMemory(): boolean {
  const f = gcFunction();
  if (!f) return false;
  f({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  return true;
}
