/**
 * `palisade blocklist remove --source S --since D --rule R --reason TEXT`: the undo of wrong
 * blocks in one step (after a policy mistake, an identity-provider outage, a guard event): every
 * block in force matching all the filters given is lifted with one tombstone each, reaching every
 * sidecar like any unblock; the reason and the actor are recorded on each tombstone. The report
 * says what was lifted; nothing matching is a failure (exit 1), so a script notices a filter
 * that missed.
 */
import type { Kafka } from 'kafkajs';
import { BLOCK_SOURCES_LIFTABLE, liftBlocks, type BlockFilter } from '../../blocklist/kafka-ops.ts';
import type { BlockRecord } from '../../blocklist/kafka-record.ts';
import { CommandFailed, UsageError } from '../args.ts';
import { parseDurationFlag } from '../duration.ts';

const COMMAND = 'palisade blocklist remove';

/** The flags of a lift, as parsed: any of source, since, rule means "remove by filter". */
export interface LiftFlags {
  readonly source?: string | undefined;
  readonly since?: string | undefined;
  readonly rule?: string | undefined;
  readonly reason?: string | undefined;
  readonly 'dry-run'?: boolean | undefined;
}

export const LIFT_OPTIONS = { source: { type: 'string' }, since: { type: 'string' }, rule: { type: 'string' }, 'dry-run': { type: 'boolean' } } as const;

export const LIFT_HELP = `Filter (instead of a target; every filter given must match, at least one; --reason required):
      --source SOURCE       who added the block: detector, manual or policy
      --since DURATION      added within the last DURATION, e.g. 10m, 2h
      --rule RULE           its rule (detector:auth.failures) or detection (auth.failures)
      --dry-run             print what would be lifted, publish nothing
`;

export function isLift(v: LiftFlags): boolean {
  return v.source !== undefined || v.since !== undefined || v.rule !== undefined || v['dry-run'] !== undefined;
}

/** The filter the flags describe; a bad flag is a usage error naming it, before Kafka is touched. */
export function liftFilter(v: LiftFlags, now: number): BlockFilter {
  const f: { source?: BlockRecord['source']; addedSince?: number; rule?: string } = {};
  if (v.source !== undefined) {
    if (!(BLOCK_SOURCES_LIFTABLE as readonly string[]).includes(v.source)) throw new UsageError(COMMAND, `--source "${v.source}": use ${BLOCK_SOURCES_LIFTABLE.join(', ')}`);
    f.source = v.source as BlockRecord['source'];
  }
  if (v.since !== undefined) f.addedSince = now - parseDurationFlag(v.since, '--since', COMMAND);
  if (v.rule !== undefined) {
    if (v.rule.trim() === '') throw new UsageError(COMMAND, '--rule needs a rule id (e.g. detector:auth.failures) or a detection (e.g. auth.failures)');
    f.rule = v.rule.trim();
  }
  if (f.source === undefined && f.addedSince === undefined && f.rule === undefined) throw new UsageError(COMMAND, '--dry-run needs a filter: --source, --since or --rule');
  return f;
}

export interface LiftReport {
  readonly lifted: number;
  readonly dryRun: boolean;
  readonly filter: { readonly source: string | null; readonly since: string | null; readonly rule: string | null };
  readonly reason: string;
  readonly actor: string;
  readonly blocks: readonly BlockRecord[];
}

function describe(v: LiftFlags): string {
  return [v.source !== undefined ? `source ${v.source}` : '', v.since !== undefined ? `added in the last ${v.since}` : '', v.rule !== undefined ? `rule ${v.rule}` : ''].filter(Boolean).join(', ');
}

function when(ms: number | null): string {
  return ms === null ? 'never' : new Date(ms).toISOString();
}

/**
 * Checks the flags (usage errors first), then lifts. `use` wraps the Kafka work (the CLI's
 * Kafka-problem messages). Throws CommandFailed when nothing matches.
 */
export async function lift(kafka: Kafka, topic: string, v: LiftFlags, actor: string, use: <T>(fn: () => Promise<T>) => Promise<T>, now = Date.now()): Promise<LiftReport> {
  const filter = liftFilter(v, now);
  const reason = v.reason?.trim();
  if (!reason) throw new UsageError(COMMAND, '--reason is required when removing by --source/--since/--rule (it is recorded on every unblock)');
  const dryRun = v['dry-run'] === true;
  const blocks = await use(() => liftBlocks(kafka, topic, filter, { actor, reason, dryRun }, now));
  if (blocks.length === 0) throw new CommandFailed(COMMAND, `nothing lifted: no block in force matches (${describe(v)}) on ${topic}`);
  return { lifted: blocks.length, dryRun, filter: { source: v.source ?? null, since: v.since ?? null, rule: v.rule ?? null }, reason, actor, blocks };
}

/** The text report: how many, which (kind, value, source, rule, added, expiry). */
export function liftText(r: LiftReport, v: LiftFlags): string {
  const n = `${r.lifted} block${r.lifted === 1 ? '' : 's'}`;
  const head = r.dryRun
    ? `would lift ${n} (${describe(v)}); nothing published (--dry-run):`
    : `lifted ${n} (${describe(v)}), reason "${r.reason}", by ${r.actor}; every sidecar lets them in within about a second:`;
  return `${head}\n${r.blocks.map((b) => `  ${b.kind} ${b.value}  ${b.source}  ${b.rule}  added ${when(b.addedAt)}  expires ${when(b.expiresAt)}`).join('\n')}\n`;
}
