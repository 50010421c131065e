// `palisade blocklist` and `palisade alerts tail` as an operator runs them (real processes, the
// real broker): strict arguments, a remove of nothing, -o json|yaml, the client id the brokers see,
// one line when Kafka cannot be reached, and no kafkajs noise on stderr.
import type { Admin } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { createWorld, type World } from '../detector/support/kafka-env.ts';
import { createTopic } from '../support/kafka-topics.ts';
import { palisade, type Run } from './support/run.ts';


function expectCleanStderr(r: Run): void {
  expect(r.stderr).not.toMatch(/TimeoutNegativeWarning|KafkaJS|"level":/);
}

describe('palisade blocklist: arguments (no Kafka needed)', () => {
  it.each([
    [['blocklist', 'add', '--ip', '203.0.113.7', '--reason', 'x', '--ttl', '10', 'minutes'], 'palisade blocklist add: takes no arguments; unexpected "minutes"'],
    [['blocklist', 'add', '--ip', '203.0.113.7', '--reason', 'x', '--ttl', '10 minutes'], 'palisade blocklist add: --ttl "10 minutes": give seconds or a number with s, m, h or d, without a space (e.g. 30m)'],
    [['blocklist', 'add', '--ip', '203.0.113.7', '--reason', 'x', '--tll', '10m'], 'palisade blocklist add: unknown flag --tll'],
    [['blocklist', 'add', '--ip', '203.0.113.7'], 'palisade blocklist add: --reason is required (it goes to the decision events and alerts)'],
    [['blocklist', 'add', '--ip', 'not-an-ip', '--reason', 'x'], 'palisade blocklist add: --ip: ip "not-an-ip" is not an IPv4 or IPv6 address; for a network use cidr'],
    [['blocklist', 'remove', '203.0.113.7'], 'palisade blocklist remove: takes no arguments; unexpected "203.0.113.7"'],
    [['blocklist', 'remove', '--ip', '203.0.113.7', '--subject', 'bob'], 'palisade blocklist remove: give exactly one target (--ip, --cidr, --spiffe-id, --subject, --client-id, --token-id); got --ip and --subject'],
    [['blocklist', 'list', 'all'], 'palisade blocklist list: takes no arguments; unexpected "all"'],
    [['blocklist', 'list', '-o', 'wide'], 'palisade blocklist list: -o "wide": use json, yaml or text'],
    [['blocklist', 'purge'], 'palisade blocklist: unknown subcommand "purge"; use list, add, remove'],
    [['blocklist'], 'palisade blocklist: name a subcommand: list, add, remove'],
    [['alerts', 'tail', '--min-severity', 'urgent'], 'palisade alerts tail: --min-severity "urgent": use low, medium, high or critical'],
    [['alerts', 'tail', 'now'], 'palisade alerts tail: takes no arguments; unexpected "now"'],
    [['alerts'], 'palisade alerts: name a subcommand: tail'],
  ])('%j is a usage error (exit 2), before touching Kafka', async (args, message) => {
    // An unreachable broker: a usage error must not get as far as Kafka.
    const r = await palisade(args, { env: { PALISADE_KAFKA_BROKERS: '127.0.0.1:1' } });
    expect(r.stderr).toBe(`${message}\nRun "${message.slice(0, message.indexOf(':'))} --help" for usage.\n`);
    expect(r.stdout).toBe('');
    expect(r.code).toBe(2);
  });

  it.each([['blocklist', 'list'], ['blocklist', 'add', '--ip', '203.0.113.7', '--reason', 'x'], ['blocklist', 'remove', '--ip', '203.0.113.7'], ['alerts', 'tail']])(
    'palisade %s with the broker down: one line naming the broker and what to check, exit 1',
    async (...args: string[]) => {
      const r = await palisade(args, { env: { PALISADE_KAFKA_BROKERS: '127.0.0.1:1' } });
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(
        `palisade ${args.slice(0, 2).join(' ')}: cannot reach Kafka at 127.0.0.1:1 (connect ECONNREFUSED 127.0.0.1:1); check PALISADE_KAFKA_BROKERS (or --brokers), that the brokers are up and that this machine can reach them\n`,
      );
    },
  );
});

describe('palisade detector with the broker down at start', () => {
  it('says so in one line and exits 1 (no kafkajs error logs, no stack, nothing left running)', async () => {
    const r = await palisade(['detector'], { env: { PALISADE_KAFKA_BROKERS: '127.0.0.1:1', PALISADE_DETECTOR_ADMIN_HOST: '127.0.0.1', PALISADE_DETECTOR_ADMIN_PORT: '0', PALISADE_LOG_LEVEL: 'info' } });
    expect(r.code).toBe(1);
    const lines = r.stderr.trimEnd().split('\n');
    // Its admin listener came up first (probes answer while it starts); then the one line.
    expect(lines.slice(0, -1).every((l) => l.includes('"detector admin listening"'))).toBe(true);
    expect(lines.at(-1)).toBe('palisade detector: cannot reach Kafka at 127.0.0.1:1 (connect ECONNREFUSED 127.0.0.1:1); check PALISADE_KAFKA_BROKERS (or --brokers), that the brokers are up and that this machine can reach them');
  });
});

describe('palisade blocklist and alerts on the real broker', () => {
  let world: World;
  let admin: Admin;
  let env: Record<string, string>;
  beforeAll(async () => {
    world = createWorld('cli-blocklist');
    env = { ...world.env, PALISADE_LOG_LEVEL: 'info' };
    admin = world.kafka.admin();
    await admin.connect();
    await createTopic(admin, { topic: world.settings.kafkaTopicBlocklist, numPartitions: 1, replicationFactor: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] });
    await createTopic(admin, { topic: world.settings.kafkaTopicAlerts, numPartitions: 1, replicationFactor: 1 });
  });
  afterAll(async () => {
    await admin?.disconnect();
    await world?.close();
  });

  it('adds with a ttl, lists as a table, JSON and YAML, removes, and says when there is nothing to remove', async () => {
    const add = await palisade(['blocklist', 'add', '--ip', '203.0.113.7', '--reason', 'SOC ticket 4711', '--ttl', '10m', '--actor', 'alice', '-o', 'json'], { env });
    expectCleanStderr(add);
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    const added = JSON.parse(add.stdout) as { kind: string; value: string; expiresAt: number; addedAt: number; actor: string; source: string };
    expect(added).toMatchObject({ kind: 'ip', value: '203.0.113.7', actor: 'alice', source: 'manual' });
    // 10m is ten minutes, not ten seconds.
    expect(added.expiresAt - added.addedAt).toBe(600_000);

    const table = await palisade(['blocklist', 'list'], { env });
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^KIND\s+VALUE\s+SOURCE\s+EXPIRES\s+RULE\s+REASON\nip\s+203\.0\.113\.7\s+manual\s+20\d\d-\S+\s+manual:ip\s+SOC ticket 4711\n$/);
    expectCleanStderr(table);
    const asJson = JSON.parse((await palisade(['blocklist', 'list', '--json'], { env })).stdout) as { value: string }[];
    const asYaml = parseYaml((await palisade(['blocklist', 'list', '-o', 'yaml'], { env })).stdout) as { value: string }[];
    expect(asJson.map((e) => e.value)).toEqual(['203.0.113.7']);
    expect(asYaml).toEqual(asJson);

    const rm = await palisade(['blocklist', 'remove', '--ip', '203.0.113.7', '--reason', 'false positive'], { env });
    expect(rm.code).toBe(0);
    expect(rm.stdout).toBe('unblocked ip 203.0.113.7 (was: manual block, SOC ticket 4711); the detector will not block it again without new evidence\n');
    expectCleanStderr(rm);

    // Never blocked, or already removed: nothing is published, exit 1.
    for (const target of [['--ip', '203.0.113.7'], ['--spiffe-id', 'spiffe://td/ns/never/sa/blocked']]) {
      const none = await palisade(['blocklist', 'remove', ...target], { env });
      expect(none.code).toBe(1);
      expect(none.stdout).toBe('');
      expect(none.stderr).toMatch(new RegExp(`^palisade blocklist remove: \\S+ ${target[1]} has no block in force on ${world.settings.kafkaTopicBlocklist}; nothing published\\n$`));
    }
    const ignored = await palisade(['blocklist', 'remove', '--ip', '203.0.113.7', '--ignore-not-found'], { env });
    expect(ignored.code).toBe(0);
    expect(ignored.stdout).toBe(`ip 203.0.113.7 has no block in force on ${world.settings.kafkaTopicBlocklist}; nothing published\n`);
    // Only the add and the one real remove reached the topic.
    const offsets = await admin.fetchTopicOffsets(world.settings.kafkaTopicBlocklist);
    expect(offsets.map((o) => o.high)).toEqual(['2']);

    const empty = await palisade(['blocklist', 'list'], { env });
    expect(empty.stdout).toBe(`no blocks in force on ${world.settings.kafkaTopicBlocklist}\n`);
    expect(JSON.parse((await palisade(['blocklist', 'list', '-o', 'json'], { env })).stdout)).toEqual([]);
  });

  it('identifies itself to the brokers as palisade-cli-blocklist, not as a sidecar', async () => {
    // A broker-side view of who connects: the consumer group the list command joins shows its client id.
    const seen = new Set<string>();
    const watcher = setInterval(() => {
      void admin
        .listGroups()
        .then(async ({ groups }) => {
          const ours = groups.filter((g) => g.groupId.startsWith('palisade-blocklist-cli-')).map((g) => g.groupId);
          if (ours.length === 0) return;
          for (const g of (await admin.describeGroups(ours)).groups) for (const m of g.members) seen.add(m.clientId);
        })
        .catch(() => undefined);
    }, 20);
    try {
      // Enough records that the one-shot reader stays in its group for a moment.
      await palisade(['blocklist', 'add', '--subject', 'mallory', '--reason', 'test'], { env });
      for (let i = 0; i < 5 && seen.size === 0; i++) await palisade(['blocklist', 'list'], { env });
    } finally {
      clearInterval(watcher);
    }
    // (toContain: other runs on the same broker may have list groups of their own.)
    expect([...seen]).toContain('palisade-cli-blocklist');
  });

  it('alerts tail says it is connected and waiting, on stderr, identifies itself as palisade-cli-alerts, and stops on SIGINT', async () => {
    const { spawn } = await import('node:child_process');
    const { BIN } = await import('./support/run.ts');
    const child = spawn(process.execPath, [BIN, 'alerts', 'tail', '--min-severity', 'high'], { env: { ...process.env, ...env } });
    let stderr = '';
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    const waiting = new Promise<void>((resolve) =>
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
        if (stderr.includes('\n')) resolve();
      }),
    );
    await waiting;
    expect(stderr).toBe(`connected to Kafka at ${env['PALISADE_KAFKA_BROKERS']}; waiting for new alerts on ${world.settings.kafkaTopicAlerts} (severity high and above); Ctrl-C to stop\n`);
    // Its consumer group is one of its own, and the brokers see it as palisade-cli-alerts.
    const ours = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith('palisade-alerts-tail-'));
    const members = (await admin.describeGroups(ours)).groups.flatMap((g) => g.members.map((m) => m.clientId));
    // (toContain: other runs on the same broker may have tail groups of their own.)
    expect(members).toContain('palisade-cli-alerts');
    const exited = new Promise<number | null>((r) => child.once('exit', r));
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(stdout).toBe('');
    expect(stderr).not.toMatch(/TimeoutNegativeWarning|KafkaJS/);
  });
});

