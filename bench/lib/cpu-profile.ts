/**
 * Reads a V8 .cpuprofile (node --cpu-prof) and sums its samples inside a time
 * window, per source file (or package) or per function: where a process's
 * time went while it was under a known load (bench/profile.ts).
 *
 * Times are wall-clock between samples, not CPU: a thread preempted inside a
 * system call (a loopback `writev` wakes the receiving process) shows the wait
 * as self time of that call. Compare like with like, and judge costs by the
 * CPU time /proc reports.
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface WindowTotals {
  /** Sampled time that was not idle, µs. */
  readonly busyUs: number;
  /** Samples in the window (0: the window and the profile do not overlap). */
  readonly samples: number;
  /** Busy time per key, µs, largest first. */
  readonly byKey: readonly (readonly [string, number])[];
}

/** "npm:<package>", "node:<module>", "src/<path>", or V8's own names ((garbage collector), writev...). */
function fileOf(cf: CallFrame): string {
  const u = cf.url;
  if (!u) return cf.functionName || '(vm)';
  const pkg = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(u);
  if (pkg) return `npm:${pkg[1]}`;
  if (u.startsWith('node:')) return u;
  const own = /\/((?:src|bench|detectors)\/.*)$/.exec(u);
  return own ? own[1]! : u;
}

const functionOf = (cf: CallFrame) => `${cf.functionName || '(anonymous)'} ${fileOf(cf)}:${cf.lineNumber + 1}`;

/**
 * Sums the profile's samples taken between `fromUs` and `toUs` (CLOCK_MONOTONIC
 * microseconds: the clock of process.hrtime in any process of this machine,
 * and of V8's profiler), by file or by function.
 */
export function profileWindow(file: string, fromUs: number, toUs: number, by: 'file' | 'function'): WindowTotals {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const frames = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
  const key = by === 'file' ? fileOf : functionOf;
  const sums = new Map<string, number>();
  let t = p.startTime;
  let busy = 0;
  let samples = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (t < fromUs || t > toUs || i === 0) continue;
    const cf = frames.get(p.samples[i]!);
    if (!cf || cf.functionName === '(idle)') continue;
    samples++;
    busy += dt;
    const k = key(cf);
    sums.set(k, (sums.get(k) ?? 0) + dt);
  }
  return { busyUs: busy, samples, byKey: [...sums].sort((a, b) => b[1] - a[1]) };
}
