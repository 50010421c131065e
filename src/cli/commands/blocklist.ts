/**
 * `palisade blocklist list | add | remove`: the security engineer's hands on
 * the block list every sidecar follows (the compacted block-list topic).
 *
 *   palisade blocklist list [--json]
 *   palisade blocklist add --ip 203.0.113.7 --reason "credential stuffing" [--ttl 2h] [--actor alice]
 *   palisade blocklist remove --spiffe-id spiffe://td/ns/a/sa/b [--reason "false positive"]
 *
 * Targets: --ip, --cidr, --spiffe-id, --subject, --client-id, --token-id (one).
 * A manual unblock wins over the detector until it sees new evidence.
 */
import { userInfo } from 'node:os';
import { BlockEntryError, type BlockKind } from '../../blocklist/entry.ts';
import { canonicalTarget } from '../../blocklist/kafka-record.ts';
import { publishManualBlock, publishManualUnblock, readBlockList } from '../../blocklist/kafka-ops.ts';
import { PalisadeError } from '../../errors/codes.ts';
import { createKafkaClient } from '../../kafka/client.ts';
import { createLogger } from '../../log/logger.ts';
import { parseFlags } from '../args.ts';
import { kafkaSettings, quietKafkajsTimerWarnings } from '../kafka-required.ts';

const TARGET_FLAGS: Readonly<Record<string, BlockKind>> = { ip: 'ip', cidr: 'cidr', 'spiffe-id': 'spiffeId', subject: 'subject', 'client-id': 'clientId', 'token-id': 'tokenId' };

const USAGE = `usage: palisade blocklist list [--json]
       palisade blocklist add <target> --reason TEXT [--ttl DURATION] [--actor NAME]
       palisade blocklist remove <target> [--reason TEXT] [--actor NAME]
target: --ip ADDR | --cidr NET | --spiffe-id ID | --subject SUB | --client-id ID | --token-id JTI
DURATION: seconds, or 90s / 30m / 12h / 7d (default: until removed)
`;

/** "90" | "90s" | "30m" | "12h" | "7d" -> ms. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new PalisadeError('CONFIG_INVALID', `--ttl "${text}": give seconds or a number with s, m, h or d (e.g. 30m)`);
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  const ms = Number(m[1]) * unit * 1000;
  if (!(ms > 0)) throw new PalisadeError('CONFIG_INVALID', `--ttl "${text}" must be positive`);
  return ms;
}

function targetOf(values: Record<string, unknown>): { kind: BlockKind; value: string } {
  const given = Object.keys(TARGET_FLAGS).filter((f) => typeof values[f] === 'string');
  if (given.length !== 1) throw new PalisadeError('CONFIG_INVALID', `give exactly one target (${Object.keys(TARGET_FLAGS).map((f) => `--${f}`).join(', ')}); got ${given.length === 0 ? 'none' : given.map((f) => `--${f}`).join(' and ')}`);
  const flag = given[0] as string;
  try {
    return canonicalTarget(TARGET_FLAGS[flag] as BlockKind, values[flag] as string);
  } catch (err) {
    if (err instanceof BlockEntryError) throw new PalisadeError('CONFIG_INVALID', `--${flag}: ${err.message}`);
    throw err;
  }
}

function when(ms: number | null): string {
  return ms === null ? 'never' : new Date(ms).toISOString();
}

export async function run(argv: string[]): Promise<number> {
  quietKafkajsTimerWarnings();
  const [sub, ...rest] = argv;
  if (sub !== 'list' && sub !== 'add' && sub !== 'remove') {
    process.stderr.write(USAGE);
    return 2;
  }
  const { values } = parseFlags(
    rest,
    {
      json: { type: 'boolean' },
      reason: { type: 'string' },
      ttl: { type: 'string' },
      actor: { type: 'string' },
      brokers: { type: 'string' },
      ...Object.fromEntries(Object.keys(TARGET_FLAGS).map((f) => [f, { type: 'string' as const }])),
    },
    `palisade blocklist ${sub}`,
  );
  const settings = kafkaSettings(`palisade blocklist ${sub}`, process.env, values.brokers as string | undefined);
  const logger = createLogger({ level: 'warn', name: 'palisade-blocklist' });
  const kafka = createKafkaClient(settings, logger);
  const topic = settings.kafkaTopicBlocklist;
  const actor = (values.actor as string | undefined) ?? process.env['USER'] ?? userInfo().username;

  if (sub === 'list') {
    const list = await readBlockList(kafka, topic);
    if (values.json) {
      process.stdout.write(JSON.stringify(list, null, 2) + '\n');
      return 0;
    }
    if (list.length === 0) {
      process.stdout.write(`no blocks in force on ${topic}\n`);
      return 0;
    }
    const rows = list.map((r) => [r.kind, r.value, r.source, when(r.expiresAt), r.rule, r.reason]);
    const head = ['KIND', 'VALUE', 'SOURCE', 'EXPIRES', 'RULE', 'REASON'];
    const widths = head.map((h, i) => Math.min(60, Math.max(h.length, ...rows.map((r) => String(r[i]).length))));
    const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number))).join('  ');
    process.stdout.write([line(head), ...rows.map((r) => line(r.map(String)))].join('\n') + '\n');
    return 0;
  }

  const target = targetOf(values);
  if (sub === 'add') {
    const reason = values.reason as string | undefined;
    if (!reason) throw new PalisadeError('CONFIG_INVALID', 'palisade blocklist add: --reason is required (it is shown to the client and in every decision)');
    const expiresAt = values.ttl ? Date.now() + parseDuration(values.ttl as string) : null;
    const r = await publishManualBlock(kafka, topic, { ...target, reason, expiresAt, actor });
    process.stdout.write(`blocked ${r.kind} ${r.value} until ${when(r.expiresAt)} (${r.reason}); every sidecar applies it within about a second\n`);
    return 0;
  }
  await publishManualUnblock(kafka, topic, { ...target, actor, reason: (values.reason as string | undefined) ?? null });
  process.stdout.write(`unblocked ${target.kind} ${target.value}; the detector will not block it again without new evidence\n`);
  return 0;
}
