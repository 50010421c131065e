/** Durations on the command line ("90" | "90s" | "30m" | "12h" | "7d"), for --ttl and --since. */
import { UsageError } from './args.ts';

/** "90" | "90s" | "30m" | "12h" | "7d" -> ms; a bad one is a usage error naming `flag` of `command`. */
export function parseDurationFlag(text: string, flag: string, command: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new UsageError(command, `${flag} "${text}": give seconds or a number with s, m, h or d, without a space (e.g. 30m)`);
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  const ms = Number(m[1]) * unit * 1000;
  if (!(ms > 0)) throw new UsageError(command, `${flag} "${text}" must be positive`);
  return ms;
}
