// The real `palisade sidecar` process with the Kafka sink: SIGTERM under load
// loses nothing (every decided response is an event on the topic or in the
// spool), and a spool left by a process that died while Kafka was unreachable
// is published by the next process.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Agent } from 'undici';
import { mtlsAgents, publicItemsPolicy, send, until } from '../../../support/harness.ts';
import { sidecarProcessBed } from '../../../support/sidecar-process.ts';
import { BROKERS, deleteTopics, readTopic, topicCount, uniqueTopic } from './support.ts';

/** Events in the spool files (one line each; a line still being written, without its newline yet, is not one). */
function spooledIds(dir: string): string[] {
  const ids: string[] = [];
  for (const f of readdirSync(dir).filter((n) => n.startsWith('seg-')).sort()) {
    const lines = readFileSync(join(dir, f), 'utf8').split('\n');
    lines.pop();
    for (const line of lines) if (line) ids.push((JSON.parse(line) as { id: string }).id);
  }
  return ids;
}

describe('palisade sidecar process with the Kafka sink', () => {
  const bed = sidecarProcessBed(publicItemsPolicy('kafka-process'));
  const topics: string[] = [];
  const dirs: string[] = [];
  afterAll(async () => {
    await deleteTopics(topics);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  function envFor(topic: string, spoolDir: string, brokers = BROKERS): Record<string, string> {
    const blocklist = uniqueTopic('blocklist');
    const alerts = uniqueTopic('alerts');
    topics.push(topic, blocklist, alerts);
    return {
      ...bed.env(),
      PALISADE_LOG_LEVEL: 'info',
      PALISADE_KAFKA_BROKERS: brokers,
      PALISADE_KAFKA_TOPIC_DECISIONS: topic,
      PALISADE_KAFKA_TOPIC_BLOCKLIST: blocklist,
      PALISADE_KAFKA_TOPIC_ALERTS: alerts,
      PALISADE_KAFKA_TOPIC_PARTITIONS: '3',
      PALISADE_KAFKA_LINGER_MS: '10',
      PALISADE_KAFKA_CONNECT_TIMEOUT_MS: '500',
      PALISADE_SPOOL_DIR: spoolDir,
    };
  }

  /** mTLS clients, each its own identity (the message key). */
  const agents = (n: number): Promise<Agent[]> => mtlsAgents(bed.pki, n, 'p');

  it('SIGTERM during load: every decided response is an event on the topic or in the spool', { timeout: 120_000 }, async () => {
    const topic = uniqueTopic('sigterm');
    const spoolDir = mkdtempSync(join(tmpdir(), 'palisade-sigterm-spool-'));
    dirs.push(spoolDir);
    // A long linger: at SIGTERM nearly every event is still in memory, so the shutdown flush is what delivers it.
    const p = await bed.start({ ...envFor(topic, spoolDir), PALISADE_KAFKA_LINGER_MS: '20000', PALISADE_KAFKA_BATCH_SIZE: '5000' });
    const clients = await agents(6);
    let decided = 0;
    let refused = 0;
    let failed = 0;
    let running = true;
    const load = clients.map(async (agent, c) => {
      for (let seq = 0; running; seq++) {
        try {
          const res = await send(agent, `${p.base}/items/${c}-${seq}`);
          // While closing, fastify answers 503 before any stage runs: not a decision.
          if (res.status === 503 && !String(res.headers['content-type']).includes('problem+json')) refused++;
          else decided++;
        } catch {
          failed++; // connection refused/closed once the listener is gone
          if (failed > 50) return;
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    });
    await until(() => decided > 300, 30_000);
    p.child.kill('SIGTERM');
    const exit = await p.exited;
    running = false;
    await Promise.all(load);
    await Promise.all(clients.map((a) => a.close()));
    expect(exit, p.log.join('').slice(-4000)).toEqual({ code: 0, signal: null });
    expect(p.log.join('')).not.toContain('did not exit by itself'); // nothing left holding the process after the drain
    expect(p.log.some((l) => l.includes('kafka decision sink closed'))).toBe(true);

    const spooled = spooledIds(spoolDir);
    const onTopic = await topicCount(topic);
    const messages = await readTopic(topic, onTopic);
    const ids = new Set([...messages.map((m) => m.headers['event-id']!), ...spooled]);
    console.log(`[kafka sigterm] decided responses ${decided}, closing 503s ${refused}, connection errors ${failed}; on topic ${onTopic}, spooled ${spooled.length}, unique ${ids.size}`);
    expect(ids.size).toBe(decided);
  });

  it('a spool left by a process that died while Kafka was unreachable is published by the next process', { timeout: 180_000 }, async () => {
    const topic = uniqueTopic('replay');
    const spoolDir = mkdtempSync(join(tmpdir(), 'palisade-replay-spool-'));
    dirs.push(spoolDir);
    // First process: a broker address nobody listens on.
    const first = await bed.start(envFor(topic, spoolDir, '127.0.0.1:1'));
    const clients = await agents(4);
    const n = 400;
    let ok = 0;
    await Promise.all(
      clients.map(async (agent, c) => {
        for (let seq = 0; seq < n / clients.length; seq++) if ((await send(agent, `${first.base}/items/${c}-${seq}`)).status === 200) ok++;
      }),
    );
    expect(ok).toBe(n);
    // Spilled and fsynced (PALISADE_SPOOL_FSYNC=always) before it dies without any shutdown.
    await until(() => spooledIds(spoolDir).length === n, 30_000);
    first.child.kill('SIGKILL');
    await first.exited;
    await Promise.all(clients.map((a) => a.close()));
    const spooled = spooledIds(spoolDir);

    // SIGTERM soon after the start: this once left the block-list feed's consumer restarting after
    // close (a crash while disconnecting), which kept the drained process alive until its grace ran out.
    const second = await bed.start(envFor(topic, spoolDir));
    await until(() => readdirSync(spoolDir).every((f) => !f.startsWith('seg-')), 60_000);
    second.child.kill('SIGTERM');
    expect(await second.exited, second.log.join('').slice(-4000)).toEqual({ code: 0, signal: null });
    expect(second.log.join('')).not.toContain('did not exit by itself');
    expect(second.log.some((l) => l.includes('spool holds events from an earlier run'))).toBe(true);

    const messages = await readTopic(topic, n);
    expect(messages).toHaveLength(n);
    expect(new Set(messages.map((m) => m.headers['event-id']))).toEqual(new Set(spooled));
    // In order per client.
    const order = new Map<string, number[]>();
    for (const m of [...messages].sort((a, b) => a.partition - b.partition || a.offset - b.offset)) {
      const [, , seq] = /\/items\/(\d+)-(\d+)/.exec(m.value) ?? [];
      order.set(m.key!, [...(order.get(m.key!) ?? []), Number(seq)]);
    }
    expect(order.size).toBe(clients.length);
    for (const [, seqs] of order) expect(seqs).toEqual(seqs.map((_, i) => i));
  });
});
