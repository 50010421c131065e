/**
 * What open kafkajs connections cost while idle, with kafkajs 2.2.4's request-queue timer as
 * shipped (a 1 ms timer loop per connection, re-armed after every response) and with Palisade's
 * fix (src/kafka/request-queue-timer.ts, applied by src/kafka/client.ts): an admin and a
 * producer connected, nothing sent, for --seconds; CPU time and timers armed, each variant in a
 * fresh process. Needs a broker: PALISADE_KAFKA_BROKERS (default 127.0.0.1:19092).
 *
 *   node bench/kafka-idle.ts [--seconds 10]
 */
import { spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, variant: { type: 'string' } } });
const seconds = Number(values.seconds);
const brokers = (process.env['PALISADE_KAFKA_BROKERS'] || '127.0.0.1:19092').split(',');

if (values.variant) {
  if (values.variant === 'fixed') (await import('../src/kafka/request-queue-timer.ts')).fixKafkajsRequestQueueTimer();
  const { default: kafkajs } = await import('kafkajs');
  // Count the timers armed while idle (setTimeout is what kafkajs's loop uses).
  let timers = 0;
  const original = globalThis.setTimeout;
  globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    timers++;
    return original(fn, ms, ...args);
  }) as typeof setTimeout;
  process.removeAllListeners('warning'); // the shipped variant's TimeoutNegativeWarning is the point, not output
  const kafka = new kafkajs.Kafka({ brokers, clientId: 'palisade-bench-idle', logLevel: kafkajs.logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.listTopics();
  const producer = kafka.producer();
  await producer.connect();
  const cpu0 = process.cpuUsage();
  const timers0 = timers;
  await new Promise((r) => original(r, seconds * 1000));
  const cpu = process.cpuUsage(cpu0);
  const idleTimers = timers - timers0;
  await producer.disconnect();
  await admin.disconnect();
  process.stdout.write(JSON.stringify({ cpuMs: Math.round((cpu.user + cpu.system) / 1000), timers: idleTimers }) + '\n');
} else {
  process.stdout.write(`kafkajs idle: an admin and a producer connected to ${brokers.join(',')}, nothing sent, ${seconds} s\n`);
  for (const variant of ['shipped', 'fixed']) {
    const r = spawnSync(process.execPath, [import.meta.filename, '--variant', variant, '--seconds', String(seconds)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${variant}: exit ${r.status}: ${r.stderr}`);
    const m = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { cpuMs: number; timers: number };
    process.stdout.write(`  ${variant.padEnd(8)} CPU ${String(m.cpuMs).padStart(5)} ms (${((m.cpuMs / (seconds * 1000)) * 100).toFixed(2)}% of a core), ${m.timers} timers armed (${Math.round(m.timers / seconds)}/s)\n`);
  }
}
