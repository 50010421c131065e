/**
 * `palisade blocklist list | add | remove`: the security engineer's hands on
 * the block list every sidecar follows (the compacted block-list topic).
 *
 *   palisade blocklist list [-o json|yaml]
 *   palisade blocklist add --ip 203.0.113.7 --reason "credential stuffing" [--ttl 2h] [--actor alice]
 *   palisade blocklist remove --spiffe-id spiffe://td/ns/a/sa/b [--reason "false positive"] [--ignore-not-found]
 *   palisade blocklist remove --source detector --since 10m [--rule auth.failures] --reason "policy mistake" [--dry-run]
 *
 * Targets: --ip, --cidr, --spiffe-id, --subject, --client-id, --token-id (one).
 * A manual unblock wins over the detector until it sees new evidence. Removing a
 * target that has no block in force publishes nothing and exits 1 (kubectl delete's
 * convention; --ignore-not-found makes it exit 0).
 *
 * Each subcommand is one Subcommand (its spec, then its run): a new one, or a new
 * flag on one, touches only that block.
 */
import { userInfo } from 'node:os';
import { BlockEntryError, type BlockKind } from '../../blocklist/entry.ts';
import { blockKey, canonicalTarget, type BlockRecord } from '../../blocklist/kafka-record.ts';
import { publishManualBlock, publishManualUnblock, readBlockList } from '../../blocklist/kafka-ops.ts';
import { CommandFailed, dispatch, EXIT_FAILURE, EXIT_OK, formatOutput, formatTable, parseCommand, UsageError, type Subcommand } from '../args.ts';
import { parseDurationFlag } from '../duration.ts';
import { cliKafka } from '../kafka-required.ts';
import { acksOf, waitForAck } from './blocklist-ack.ts';
import { ackText } from '../../fleet/ack.ts';
import { isLift, lift, LIFT_HELP, LIFT_OPTIONS, liftText } from './blocklist-lift.ts';

const TARGET_FLAGS: Readonly<Record<string, BlockKind>> = { ip: 'ip', cidr: 'cidr', 'spiffe-id': 'spiffeId', subject: 'subject', 'client-id': 'clientId', 'token-id': 'tokenId' };

const TARGET_OPTIONS = {
  ip: { type: 'string' },
  cidr: { type: 'string' },
  'spiffe-id': { type: 'string' },
  subject: { type: 'string' },
  'client-id': { type: 'string' },
  'token-id': { type: 'string' },
} as const;
const KAFKA_OPTIONS = { brokers: { type: 'string' } } as const;

const TARGET_HELP = `Target (exactly one):
      --ip ADDR             an IPv4 or IPv6 address
      --cidr NET            a network, e.g. 203.0.113.0/24
      --spiffe-id ID        a workload (mTLS), spiffe://trust-domain/path
      --subject SUB         a JWT/introspection subject
      --client-id ID        an OAuth client id
      --token-id JTI        one token (its jti)
`;
const KAFKA_HELP = `      --brokers LIST        Kafka brokers, host:port,... (default: PALISADE_KAFKA_BROKERS)
`;

/** "90" | "90s" | "30m" | "12h" | "7d" -> ms. */
export function parseDuration(text: string): number {
  return parseDurationFlag(text, '--ttl', 'palisade blocklist add');
}

function targetOf(values: Record<string, unknown>, command: string): { kind: BlockKind; value: string } {
  const given = Object.keys(TARGET_FLAGS).filter((f) => typeof values[f] === 'string');
  if (given.length !== 1) throw new UsageError(command, `give exactly one target (${Object.keys(TARGET_FLAGS).map((f) => `--${f}`).join(', ')}); got ${given.length === 0 ? 'none' : given.map((f) => `--${f}`).join(' and ')}`);
  const flag = given[0] as string;
  try {
    return canonicalTarget(TARGET_FLAGS[flag] as BlockKind, values[flag] as string);
  } catch (err) {
    if (err instanceof BlockEntryError) throw new UsageError(command, `--${flag}: ${err.message}`);
    throw err;
  }
}

function when(ms: number | null): string {
  return ms === null ? 'never' : new Date(ms).toISOString();
}

function actorOf(flag: unknown): string {
  return (flag as string | undefined) ?? process.env['USER'] ?? userInfo().username;
}

const list: Subcommand = {
  summary: 'the blocks in force (a table, or -o json|yaml)',
  async run(argv) {
    const command = 'palisade blocklist list';
    const { values, output } = parseCommand(argv, {
      name: command,
      usage:
        `usage: ${command} [--acks] [-o json|yaml] [--brokers LIST]\n\nThe blocks in force now, newest first: manual ones and the detector's.\n\n` +
        '      --acks                also how many live sidecars have applied each block and the slowest\n' +
        '                            time to apply ("applied 12/12, slowest 0.41 s"), from their status records\n' +
        KAFKA_HELP,
      options: { ...KAFKA_OPTIONS, acks: { type: 'boolean' } },
      output: true,
    });
    const k = cliKafka('blocklist', command, values.brokers);
    const topic = k.settings.kafkaTopicBlocklist;
    const entries = await k.use(() => readBlockList(k.kafka, topic), topic);
    const acks = values.acks ? await acksOf(k, entries) : null;
    const ackOf = (r: BlockRecord) => acks?.get(blockKey(r.kind, r.value)) ?? null;
    const value = acks ? entries.map((r) => ({ ...r, applied: ackOf(r) })) : entries;
    process.stdout.write(
      formatOutput(output, value, () =>
        entries.length === 0
          ? `no blocks in force on ${topic}`
          : formatTable(
              ['KIND', 'VALUE', 'SOURCE', 'EXPIRES', 'RULE', ...(acks ? ['APPLIED'] : []), 'REASON'],
              entries.map((r) => {
                const a = ackOf(r);
                return [r.kind, r.value, r.source, when(r.expiresAt), r.rule, ...(acks ? [a ? ackText(a) : '-'] : []), r.reason];
              }),
            ),
      ),
    );
    return EXIT_OK;
  },
};

const add: Subcommand = {
  summary: 'block one target, until removed or for --ttl',
  async run(argv) {
    const command = 'palisade blocklist add';
    const { values, output } = parseCommand(argv, {
      name: command,
      usage:
        `usage: ${command} <target> --reason TEXT [--ttl DURATION] [--actor NAME] [--wait [--wait-timeout D]] [--brokers LIST]\n\n` +
        'Blocks the target on every sidecar (within about a second). The reason goes to the decision\n' +
        'events, logs and alerts; the client only gets the stable code and a request id.\n\n' +
        TARGET_HELP +
        '\nOptions:\n' +
        '      --reason TEXT         why (required)\n' +
        '      --ttl DURATION        seconds, or 90s / 30m / 12h / 7d, no space (default: until removed)\n' +
        '      --actor NAME          who (default: $USER)\n' +
        '      --wait                return once every live sidecar has applied the block (their status\n' +
        '                            records); after --wait-timeout, name those that have not and exit 1\n' +
        '      --wait-timeout D      how long --wait waits (default 30s)\n' +
        KAFKA_HELP,
      options: { ...TARGET_OPTIONS, ...KAFKA_OPTIONS, reason: { type: 'string' }, ttl: { type: 'string' }, actor: { type: 'string' }, wait: { type: 'boolean' }, 'wait-timeout': { type: 'string' } },
      output: true,
    });
    const target = targetOf(values, command);
    const reason = values.reason;
    if (!reason) throw new UsageError(command, '--reason is required (it goes to the decision events and alerts)');
    const ttlMs = values.ttl === undefined ? null : parseDuration(values.ttl);
    const k = cliKafka('blocklist', command, values.brokers);
    const waitMs = values['wait-timeout'] === undefined ? 30_000 : parseDurationFlag(values['wait-timeout'], '--wait-timeout', command);
    if (values['wait-timeout'] !== undefined && !values.wait) throw new UsageError(command, '--wait-timeout goes with --wait');
    // One clock reading for addedAt and expiresAt: --ttl 10m is exactly ten minutes in the record.
    const now = Date.now();
    const r = await k.use(() => publishManualBlock(k.kafka, k.settings.kafkaTopicBlocklist, { ...target, reason, expiresAt: ttlMs === null ? null : now + ttlMs, actor: actorOf(values.actor) }, now), k.settings.kafkaTopicBlocklist);
    if (!values.wait) {
      process.stdout.write(formatOutput(output, r, () => `blocked ${r.kind} ${r.value} until ${when(r.expiresAt)} (${r.reason}); every sidecar applies it within about a second`));
      return EXIT_OK;
    }
    const ack = await waitForAck(k, r, waitMs);
    const done = ack.sidecars > 0 && ack.pending.length === 0;
    process.stdout.write(
      formatOutput(output, { ...r, applied: ack }, () =>
        done
          ? `blocked ${r.kind} ${r.value} until ${when(r.expiresAt)} (${r.reason}); ${ackText(ack)}`
          : `blocked ${r.kind} ${r.value} until ${when(r.expiresAt)} (${r.reason}); ${ackText(ack)} after ${waitMs / 1000} s` +
            (ack.sidecars === 0 ? `; no live sidecar follows ${k.settings.kafkaTopicBlocklist}` : `; not yet applied by ${ack.pending.join(', ')}`),
      ),
    );
    return done ? EXIT_OK : EXIT_FAILURE;
  },
};

const remove: Subcommand = {
  summary: 'lift the block on one target, or every block matching --source/--since/--rule (exit 1 if none is in force)',
  async run(argv) {
    const command = 'palisade blocklist remove';
    const { values, output } = parseCommand(argv, {
      name: command,
      usage:
        `usage: ${command} <target> [--reason TEXT] [--actor NAME] [--ignore-not-found] [--brokers LIST]\n` +
        `       ${command} <filter>... --reason TEXT [--actor NAME] [--dry-run] [--brokers LIST]\n\n` +
        'Lifts the block in force on the target, manual or the detector\'s; the detector does not block it\n' +
        'again without new evidence. A target with no block in force: nothing is published, exit 1.\n' +
        'With filters instead, lifts every block in force that matches them in one step (the undo of wrong\n' +
        'automatic blocks: palisade blocklist remove --source detector --since 10m --reason "policy mistake").\n\n' +
        TARGET_HELP +
        '\n' +
        LIFT_HELP +
        '\nOptions:\n' +
        '      --reason TEXT         why (recorded with the unblock)\n' +
        '      --actor NAME          who (default: $USER)\n' +
        '      --ignore-not-found    exit 0 when the target has no block in force\n' +
        KAFKA_HELP,
      options: { ...TARGET_OPTIONS, ...KAFKA_OPTIONS, ...LIFT_OPTIONS, reason: { type: 'string' }, actor: { type: 'string' }, 'ignore-not-found': { type: 'boolean' } },
      output: true,
    });
    if (isLift(values)) {
      if (Object.keys(TARGET_FLAGS).some((f) => values[f as keyof typeof TARGET_OPTIONS] !== undefined)) throw new UsageError(command, 'give either one target or filters (--source/--since/--rule), not both');
      if (values['ignore-not-found']) throw new UsageError(command, '--ignore-not-found is for one target; a filter that matches nothing exits 1');
      const k = cliKafka('blocklist', command, values.brokers);
      const topic = k.settings.kafkaTopicBlocklist;
      const report = await lift(k.kafka, topic, values, actorOf(values.actor), (fn) => k.use(fn, topic));
      process.stdout.write(formatOutput(output, report, () => liftText(report, values)));
      return EXIT_OK;
    }
    const target = targetOf(values, command);
    const k = cliKafka('blocklist', command, values.brokers);
    const topic = k.settings.kafkaTopicBlocklist;
    const inForce: BlockRecord | undefined = (await k.use(() => readBlockList(k.kafka, topic), topic)).find((r) => r.kind === target.kind && r.value === target.value);
    if (!inForce) {
      const message = `${target.kind} ${target.value} has no block in force on ${topic}; nothing published`;
      if (values['ignore-not-found']) {
        process.stdout.write(formatOutput(output, { ...target, removed: null }, () => message));
        return EXIT_OK;
      }
      throw new CommandFailed(command, message);
    }
    await k.use(() => publishManualUnblock(k.kafka, topic, { ...target, actor: actorOf(values.actor), reason: values.reason ?? null }), topic);
    process.stdout.write(
      formatOutput(output, { ...target, removed: inForce }, () => `unblocked ${target.kind} ${target.value} (was: ${inForce.source} block, ${inForce.reason}); the detector will not block it again without new evidence`),
    );
    return EXIT_OK;
  },
};

export const SUBCOMMANDS: Readonly<Record<string, Subcommand>> = { list, add, remove };

export function run(argv: string[]): Promise<number> {
  return dispatch('palisade blocklist', argv, SUBCOMMANDS);
}
