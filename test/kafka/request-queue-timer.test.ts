// kafkajs 2.2.4 arms a negative-delay timer after every broker response (a 1 ms loop per open
// connection, and Node's TimeoutNegativeWarning); src/kafka/request-queue-timer.ts fixes that at
// the source. The processes that talk to Kafka run here for real, and their stderr must not carry
// the warning: the sidecar (decision producer, block-list feed) and the detector. (The short-lived
// commands are checked in test/cli/blocklist.test.ts.)
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createWorld, eventually } from '../detector/support/kafka-env.ts';
import { mtlsAgents, publicItemsPolicy, send } from '../support/harness.ts';
import { sidecarProcessBed } from '../support/sidecar-process.ts';
import { BROKERS, deleteTopics, topicCount, uniqueTopic } from '../decision/sinks/kafka/support.ts';

const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts');

describe('no TimeoutNegativeWarning from kafkajs', () => {
  const bed = sidecarProcessBed(publicItemsPolicy('timer-warning'));
  const topics: string[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    await deleteTopics(topics);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('in the sidecar, publishing decisions and following the block list', { timeout: 90_000 }, async () => {
    const decisions = uniqueTopic('timer-decisions');
    const blocklist = uniqueTopic('timer-blocklist');
    const alerts = uniqueTopic('timer-alerts');
    topics.push(decisions, blocklist, alerts);
    const spool = mkdtempSync(join(tmpdir(), 'palisade-timer-spool-'));
    dirs.push(spool);
    const p = await bed.start({
      ...bed.env(),
      PALISADE_LOG_LEVEL: 'info',
      PALISADE_KAFKA_BROKERS: BROKERS,
      PALISADE_KAFKA_TOPIC_DECISIONS: decisions,
      PALISADE_KAFKA_TOPIC_BLOCKLIST: blocklist,
      PALISADE_KAFKA_TOPIC_ALERTS: alerts,
      PALISADE_KAFKA_TOPIC_PARTITIONS: '1',
      PALISADE_KAFKA_TOPIC_REPLICATION: '1',
      PALISADE_KAFKA_LINGER_MS: '10',
      PALISADE_SPOOL_DIR: spool,
    });
    const [agent] = await mtlsAgents(bed.pki, 1, 'timer');
    for (let i = 0; i < 5; i++) expect((await send(agent!, `${p.base}/items/${i}`)).status).toBe(200);
    // The events went through the broker: kafkajs has had its responses.
    await eventually(async () => (await topicCount(decisions).catch(() => 0)) >= 5, 30_000, 'decisions on the topic');
    p.child.kill('SIGTERM');
    expect((await p.exited).code).toBe(0);
    const text = p.log.join('\n');
    expect(text).not.toMatch(/TimeoutNegativeWarning|negative number/);
    // Every stderr line is a pino log line: no raw warning printed in between.
    for (const line of p.log.filter((l) => l.trim() !== '')) expect(line.startsWith('{')).toBe(true);
  });

  it('in the detector, consuming and checkpointing', { timeout: 90_000 }, async () => {
    const world = createWorld('timer-detector');
    // Its own group and state topic: the default group is shared by every detector on the broker.
    const dir = mkdtempSync(join(tmpdir(), 'palisade-timer-detector-'));
    dirs.push(dir);
    const config = join(dir, 'detector.json');
    writeFileSync(config, JSON.stringify({ kafka: { groupId: world.groupId, stateTopic: world.stateTopic } }));
    let stderr = '';
    let adminPort = 0;
    const child = spawn(process.execPath, [MAIN, 'detector'], {
      env: { ...process.env, ...world.env, PALISADE_LOG_LEVEL: 'info', PALISADE_DETECTOR_ADMIN_HOST: '127.0.0.1', PALISADE_DETECTOR_ADMIN_PORT: '0', PALISADE_DETECTOR_CONFIG: config },
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
      const m = /"adminPort":(\d+)/.exec(stderr);
      if (m) adminPort = Number(m[1]);
    });
    const exited = new Promise<number | null>((r) => child.once('close', r));
    try {
      await eventually(() => adminPort > 0, 30_000, 'detector admin listening');
      await eventually(async () => (await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status === 200, 60_000, 'detector ready');
      // The brokers see the detector as itself, not as a sidecar (PALISADE_KAFKA_CLIENT_ID unset).
      const admin = world.kafka.admin();
      await admin.connect();
      try {
        const { groups } = await admin.describeGroups([world.groupId]);
        expect(groups[0]?.members.map((m) => m.clientId)).toEqual(['palisade-detector']);
      } finally {
        await admin.disconnect();
      }
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await world.close();
    }
    expect(stderr).not.toMatch(/TimeoutNegativeWarning|negative number/);
  });
});
