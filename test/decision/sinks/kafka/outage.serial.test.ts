// The shared broker is stopped in the middle of a load through the real sidecar
// and started again: every event of the outage must arrive afterwards, in order
// per client, none lost (duplicates allowed only as repeats of an event id, and
// counted). This file stops the shared broker: it must run alone
// (*.serial.test.ts; see the serial project in vitest.config.ts), and it always
// starts the broker again.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Settings } from '../../../../src/config/settings.ts';
import { createKafkaSink, type KafkaSink } from '../../../../src/decision/sinks/kafka/index.ts';
import { createLogger } from '../../../../src/log/logger.ts';
import { publicItemsPolicy, send, startHarness, until, type Harness } from '../../../support/harness.ts';
import { deleteTopics, readTopic, sinkSettings } from './support.ts';

const POLICY = publicItemsPolicy('kafka-outage');

function broker(cmd: 'start' | 'stop'): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('bash', ['deploy/kafka/broker.sh', cmd], { timeout: 180_000 }, (err, _out, stderr) => (err ? reject(new Error(`broker.sh ${cmd}: ${err.message}\n${stderr}`)) : resolve()));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.sequential('broker outage under load (stops and restarts the shared broker)', () => {
  let h: Harness;
  let sink: KafkaSink;
  let s: Settings;
  const spoolDir = mkdtempSync(join(tmpdir(), 'palisade-outage-spool-'));

  beforeAll(async () => {
    s = sinkSettings({ PALISADE_SPOOL_DIR: spoolDir, PALISADE_KAFKA_LINGER_MS: '10', PALISADE_KAFKA_CONNECT_TIMEOUT_MS: '1000', PALISADE_KAFKA_REQUEST_TIMEOUT_MS: '3000' });
    sink = await createKafkaSink(s, createLogger({ level: 'silent' }));
    h = await startHarness(POLICY, { sink });
  });
  afterAll(async () => {
    await broker('start'); // whatever happened, the shared broker runs again
    await h?.close();
    await deleteTopics([s.kafkaTopicDecisions, s.kafkaTopicBlocklist, s.kafkaTopicAlerts]);
    rmSync(spoolDir, { recursive: true, force: true });
  });

  it('delivers every event from the outage after the restart, in order per client', { timeout: 300_000 }, async () => {
    // Eight clients, each its own mTLS identity: the identity is the message key.
    const clients = Array.from({ length: 8 }, (_, i) => `spiffe://test.local/ns/load/sa/client-${i}`);
    const agents = await Promise.all(clients.map((id) => h.client(id)));
    let stop = false;
    let phase: 'before' | 'outage' | 'after' = 'before';
    const sentIn = { before: 0, outage: 0, after: 0 };
    const statuses = new Map<number, number>();
    // Each client sends one request at a time, so its decisions are made in its request order.
    const load = agents.map(async (agent, c) => {
      for (let seq = 0; !stop; seq++) {
        const res = await send(agent, `${h.base}/items/${c}-${seq}`);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        sentIn[phase]++;
      }
    });

    await sleep(1500);
    phase = 'outage';
    await broker('stop');
    await sleep(2000); // requests keep coming while the broker is away
    await until(() => sink.stats().connected === false && sink.stats().spoolBytes > 0, 30_000);
    const duringOutage = sink.stats();
    await broker('start');
    phase = 'after';
    await sleep(1500);
    stop = true;
    await Promise.all(load);

    const sent = sentIn.before + sentIn.outage + sentIn.after;
    expect(statuses.get(200)).toBe(sent); // the outage never reached the clients
    await until(() => h.decisions.length >= sent, 10_000);
    await until(() => {
      const st = sink.stats();
      return st.connected && st.spoolBytes === 0 && st.buffered === 0;
    }, 120_000);
    await sink.flush();
    const st = sink.stats();
    expect(st).toMatchObject({ accepted: sent, dropped: 0, buffered: 0, spoolBytes: 0 });

    const messages = await readTopic(s.kafkaTopicDecisions, st.delivered, 60_000);
    // Every decision the sidecar made is on the topic; repeats of an id are the only extras.
    const byId = new Map<string, number>();
    for (const m of messages) byId.set(m.headers['event-id']!, (byId.get(m.headers['event-id']!) ?? 0) + 1);
    const expectedIds = new Set(h.decisions.map((d) => d.id));
    expect(new Set(byId.keys())).toEqual(expectedIds);
    const duplicates = messages.length - byId.size;

    // Per client (key = its identity), first occurrences come in request order.
    const seen = new Set<string>();
    const order = new Map<string, number[]>();
    for (const m of [...messages].sort((a, b) => a.partition - b.partition || a.offset - b.offset)) {
      const id = m.headers['event-id']!;
      if (seen.has(id)) continue;
      seen.add(id);
      const [, c, seq] = /\/items\/(\d+)-(\d+)/.exec(m.value) ?? [];
      expect(m.key).toBe(clients[Number(c)]);
      order.set(m.key!, [...(order.get(m.key!) ?? []), Number(seq)]);
    }
    expect(order.size).toBe(clients.length);
    for (const [, seqs] of order) expect(seqs).toEqual(seqs.map((_, i) => i));

    console.log(
      `[kafka outage] requests ${sent} (before ${sentIn.before}, outage ${sentIn.outage}, after ${sentIn.after}); ` +
        `spool while the broker was down ${duringOutage.spoolBytes} B; on topic ${messages.length}, unique ${byId.size}, duplicates ${duplicates}; dropped ${st.dropped}`,
    );
  });
});
