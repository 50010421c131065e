// The undo of wrong blocks on the real broker: a sidecar follows the block-list topic, the detector
// (Kafka service) blocks a real flood and pushes the alert to a real Alertmanager; other blocks are
// on the topic (an older detector block, another rule's, a manual one). `palisade blocklist remove
// --source detector --since 10m --reason ...` lifts exactly the recent detector blocks in one step:
// the sidecar lets them in, the others stay, the reason and actor are on every tombstone, and the
// flood's alert resolves in Alertmanager. --rule lifts by rule; a filter matching nothing says so.
import { spawn } from 'node:child_process';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KafkaDetector } from '../../detectors/kafka/service.ts';
import { generateTraffic, type SimClient } from '../../detectors/sim/traffic.ts';
import { encodeBlock, decodeBlockMessage } from '../../src/blocklist/kafka-record.ts';
import { blockListStore } from '../../src/blocklist/store.ts';
import { readToEnd } from '../../src/kafka/read-to-end.ts';
import { startAlertmanager, startReceiver, type Alertmanager } from '../support/alertmanager.ts';
import { send, type Harness } from '../support/harness.ts';
import { TEST_CONFIG } from './support/config.ts';
import { createWorld, eventually, type World } from './support/kafka-env.ts';
import { closeClients, liveClients, replay, useSimApi, type LiveClient } from './support/live.ts';

const { Partitioners } = kafkajs;
const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

function palisade(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('undo: palisade blocklist remove by source, age and rule', () => {
  let world: World;
  let h: Harness;
  let detector: KafkaDetector;
  let detectorConfig: Parameters<World['detector']>[0];
  let am: Alertmanager;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let clients: LiveClient[] = [];
  let attacker: SimClient;
  const now = Date.now();
  const OLD = 'spiffe://td/ns/undo/sa/old-detector-block';
  const OTHER_RULE = '203.0.113.77';
  const MANUAL = 'spiffe://td/ns/undo/sa/manual-block';

  beforeAll(async () => {
    receiver = await startReceiver();
    am = await startAlertmanager({ webhookUrl: receiver.url });
    world = createWorld('undo');
    detectorConfig = {
      ...TEST_CONFIG,
      // Low burst floors: a machine too loaded to send 300 requests/s must still get its flood caught
      // (no benign clients here); this test is about the undo, not the thresholds.
      detections: { 'rate.burst': { minRate: 10, coldMinRate: 20 } },
      // medium too: on a loaded machine a flood may reach only a medium score; this test is about the undo.
      feedback: { medium: { action: 'block', durationSeconds: 600 }, high: { action: 'block', durationSeconds: 600 }, critical: { action: 'block', durationSeconds: 600 } },
      alerts: { alertmanager: { urls: [am.url], resendIntervalSeconds: 1 } },
    };
    detector = await world.detector(detectorConfig);
    h = await world.sidecar();
    useSimApi(h.upstream);
    // Blocks already on the topic: a detector block from an hour ago, a recent one of another rule, a manual one.
    const producer = world.kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const later = now + 3_600_000;
    await producer.send({
      topic: world.settings.kafkaTopicBlocklist,
      acks: -1,
      messages: [
        encodeBlock({ kind: 'spiffeId', value: OLD, reason: 'auth.failures (high)', source: 'detector', expiresAt: later, addedAt: now - 3_600_000, rule: 'detector:auth.failures', detection: 'auth.failures' }),
        encodeBlock({ kind: 'ip', value: OTHER_RULE, reason: 'enumeration.paths (high)', source: 'detector', expiresAt: later, addedAt: now - 60_000, rule: 'detector:enumeration.paths', detection: 'enumeration.paths' }),
        encodeBlock({ kind: 'spiffeId', value: MANUAL, reason: 'investigating', source: 'manual', expiresAt: null, addedAt: now - 60_000, rule: 'manual:spiffeId', actor: 'alice' }),
      ],
    });
    await producer.disconnect();
    await eventually(() => blockListStore(h.services).get('spiffeId', MANUAL) !== undefined, 15_000, 'sidecar follows the topic');
  });
  afterAll(async () => {
    await closeClients(clients);
    await world?.close();
    await am?.close();
    await receiver?.close();
  });

  it('lifts the recent detector blocks in one step, with the reason recorded, and resolves their alert', async () => {
    const traffic = generateTraffic({ seed: 31, durationMs: 11_000, benign: 0, firstIndex: 600, attacks: [{ kind: 'flood', start: 3000, durationMs: 8000, rate: 300, warmAs: 'steady' }] });
    [attacker] = traffic.clients as [SimClient];
    clients = await liveClients([h.pki], traffic.clients);
    await replay(clients, traffic.requests, { bases: [h.base], stopClient: (_c, s) => s.code === 'BLOCKED' });
    await eventually(() => blockListStore(h.services).get('spiffeId', attacker.spiffeId)?.source === 'detector', 15_000, 'flood blocked at the sidecar');
    await eventually(async () => (await am.alerts([`client="${attacker.spiffeId}"`])).length > 0, 15_000, 'alert in Alertmanager');

    const r = await palisade(['blocklist', 'remove', '--source', 'detector', '--since', '10m', '--reason', 'policy mistake, SEC-9', '--actor', 'bob'], world.env);
    const liftedAt = Date.now();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^lifted 2 blocks \(source detector, added in the last 10m\), reason "policy mistake, SEC-9", by bob/);
    expect(r.stdout).toContain(`spiffeId ${attacker.spiffeId}  detector  detector:`);
    expect(r.stdout).toContain(`ip ${OTHER_RULE}  detector  detector:enumeration.paths`);

    // Every sidecar lets them in like any unblock; the older detector block and the manual one stay.
    const store = blockListStore(h.services);
    await eventually(() => store.get('spiffeId', attacker.spiffeId) === undefined && store.get('ip', OTHER_RULE) === undefined, 10_000, 'lifted at the sidecar');
    console.log(`undo: lifted at the sidecar ${Date.now() - liftedAt} ms after the command returned (upper bound: polled every 50 ms)`);
    expect((await send(clients[0]!.agents[0]!, `${h.base}/orders/1`)).status).toBe(200);
    expect(store.get('spiffeId', OLD)?.source).toBe('detector');
    expect(store.get('spiffeId', MANUAL)?.source).toBe('manual');

    // The reason and the actor are on each tombstone (what the detector and an audit read).
    const tombstones: { key: string; source: string; actor: string | null; reason: string | null }[] = [];
    await readToEnd({
      kafka: world.kafka,
      topic: world.settings.kafkaTopicBlocklist,
      groupId: `${world.groupId}.audit`,
      timeoutMs: 15_000,
      onMessage(m) {
        const d = decodeBlockMessage({ key: m.key, value: m.value, headers: m.headers as Record<string, unknown> });
        if (d.type === 'unblock') tombstones.push({ key: d.key, source: d.unblock.source, actor: d.unblock.actor, reason: d.unblock.reason });
      },
    });
    expect(tombstones.filter((t) => t.source === 'manual').map((t) => t.key).sort()).toEqual([`ip:${OTHER_RULE}`, `spiffeId:${attacker.spiffeId}`]);
    for (const t of tombstones.filter((x) => x.source === 'manual')) expect(t).toMatchObject({ actor: 'bob', reason: 'policy mistake, SEC-9' });

    // The flood's alert resolves in Alertmanager, and the receiver hears so.
    await eventually(async () => (await am.alerts([`client="${attacker.spiffeId}"`])).length === 0, 15_000, 'alert resolved in Alertmanager');
    await eventually(() => receiver.notifications.some((n) => n.status === 'resolved' && n.alerts.some((a) => a.labels['client'] === attacker.spiffeId)), 15_000, 'resolved notification');
    // The detector knows the lift is an operator's: no block for the evidence it already had.
    expect(detector.detector.feedback.activeBlocks().has(`spiffeId:${attacker.spiffeId}`)).toBe(false);
  });

  it('lifts by rule (or detection); a filter that matches nothing says so and exits 1', async () => {
    const dry = await palisade(['blocklist', 'remove', '--rule', 'auth.failures', '--reason', 'IdP outage', '--dry-run', '-o', 'json'], world.env);
    expect(dry.code).toBe(0);
    expect(JSON.parse(dry.stdout)).toMatchObject({ lifted: 1, dryRun: true, blocks: [{ value: OLD, rule: 'detector:auth.failures' }] });
    expect(blockListStore(h.services).get('spiffeId', OLD)).toBeDefined();

    const r = await palisade(['blocklist', 'remove', '--rule', 'detector:auth.failures', '--reason', 'IdP outage'], world.env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^lifted 1 block \(rule detector:auth.failures\)/);
    await eventually(() => blockListStore(h.services).get('spiffeId', OLD) === undefined, 10_000, 'lifted by rule');
    expect(blockListStore(h.services).get('spiffeId', MANUAL)).toBeDefined();

    const none = await palisade(['blocklist', 'remove', '--source', 'detector', '--since', '10m', '--reason', 'again'], world.env);
    expect(none.code).toBe(1);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/^palisade blocklist remove: nothing lifted: no block in force matches \(source detector, added in the last 10m\)/);
  });

  it('refuses a lift without a reason, with a target as well, or with a bad filter, before touching Kafka', async () => {
    const env = { PALISADE_KAFKA_BROKERS: '127.0.0.1:1' };
    const noReason = await palisade(['blocklist', 'remove', '--source', 'detector'], env);
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toMatch(/--reason is required when removing by --source\/--since\/--rule/);
    const both = await palisade(['blocklist', 'remove', '--ip', '203.0.113.1', '--source', 'detector', '--reason', 'x'], env);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/either one target or filters/);
    const badSource = await palisade(['blocklist', 'remove', '--source', 'robot', '--reason', 'x'], env);
    expect(badSource.code).toBe(2);
    expect(badSource.stderr).toMatch(/--source "robot": use detector, manual, policy/);
    const badSince = await palisade(['blocklist', 'remove', '--since', 'yesterday', '--reason', 'x'], env);
    expect(badSince.code).toBe(2);
    expect(badSince.stderr).toMatch(/--since "yesterday": give seconds or a number with s, m, h or d/);
    const dryAlone = await palisade(['blocklist', 'remove', '--dry-run', '--reason', 'x'], env);
    expect(dryAlone.code).toBe(2);
    expect(dryAlone.stderr).toMatch(/--dry-run needs a filter/);
  });

  it('a detector restarted after the block still resolves the alert when the block is lifted', async () => {
    const traffic = generateTraffic({ seed: 32, durationMs: 11_000, benign: 0, firstIndex: 650, attacks: [{ kind: 'flood', start: 3000, durationMs: 8000, rate: 300, warmAs: 'steady' }] });
    const [second] = traffic.clients as [SimClient];
    const live = await liveClients([h.pki], traffic.clients);
    clients.push(...live);
    await replay(live, traffic.requests, { bases: [h.base], stopClient: (_c, s) => s.code === 'BLOCKED' });
    await eventually(() => blockListStore(h.services).get('spiffeId', second.spiffeId)?.source === 'detector', 15_000, 'second flood blocked');
    await eventually(async () => (await am.alerts([`client="${second.spiffeId}"`, 'action="block"'])).length > 0, 15_000, 'its alert in Alertmanager');
    // The detector restarts: the new instance never raised that alert; it learns it from the block list.
    await detector.close();
    detector = await world.detector(detectorConfig);
    const r = await palisade(['blocklist', 'remove', '--spiffe-id', second.spiffeId, '--reason', 'false positive'], world.env);
    expect(r.code).toBe(0);
    // Resolved now, not at the block's expiry ten minutes away.
    await eventually(async () => (await am.alerts([`client="${second.spiffeId}"`, 'action="block"'])).length === 0, 15_000, 'alert resolved by the restarted detector');
    await eventually(() => receiver.notifications.some((n) => n.status === 'resolved' && n.alerts.some((a) => a.labels['client'] === second.spiffeId)), 15_000, 'resolved notification');
  });
});
