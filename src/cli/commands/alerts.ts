/**
 * `palisade alerts tail`: prints the detector's alerts (OCSF Detection
 * Findings on the alerts topic) as they arrive, one line each, or as JSON.
 *
 *   palisade alerts tail [--from-beginning] [--exit-at-end] [-o json|yaml] [--min-severity high] [--detection rate.burst]
 *
 * Once its consumer has joined, it says so on stderr (which brokers, which topic) so a quiet
 * terminal reads as "no alerts yet", not as "stuck"; stdout carries only alerts.
 */
import { randomUUID } from 'node:crypto';
import { anomalyFromDetectionFinding, isDetectionFinding } from '../../decision/ocsf/detection-finding.ts';
import { stringify as toYaml } from 'yaml';
import { retryUntilStopped } from '../../kafka/client.ts';
import { fetchTopicEnds } from '../../kafka/offsets.ts';
import { dispatch, EXIT_OK, parseCommand, UsageError, type Subcommand } from '../args.ts';
import { cliKafka } from '../kafka-required.ts';

const RANK: Readonly<Record<string, number>> = { low: 0, medium: 1, high: 2, critical: 3 };

function fmt(n: number): string {
  return Math.abs(n) >= 100 ? String(Math.round(n)) : String(Number(n.toPrecision(3)));
}

/** One line for a finding: when, severity, detection, client, observed vs threshold, baseline, action, summary. */
export function alertLine(event: unknown): string {
  const a = anomalyFromDetectionFinding(event);
  const b = a.baseline;
  const action = a.response?.action === 'block' ? `BLOCKED until ${a.response.until ? new Date(a.response.until).toISOString() : 'removed'}` : a.response?.suppressed ? `alert (block suppressed: ${a.response.suppressed})` : 'alert';
  return (
    `${new Date(a.time).toISOString()} ${a.severity.toUpperCase().padEnd(8)} ${a.detection.padEnd(24)} ${a.client.key}` +
    ` observed ${fmt(a.observed)} > ${fmt(a.threshold)} ${a.unit} over ${a.window.seconds}s` +
    ` (baseline ${b.source}${b.source === 'none' ? '' : ` ${fmt(b.mean)}±${fmt(b.stddev)}`})${a.route ? ` route ${a.route}` : ''} ${action} alert=${a.id ?? '?'} evidence=${a.evidenceId}\n    ${a.summary}`
  );
}

const tail: Subcommand = {
  summary: 'print the detector\'s alerts as they arrive (Ctrl-C to stop)',
  async run(argv) {
    const command = 'palisade alerts tail';
    const { values, output } = parseCommand(argv, {
      name: command,
      usage:
        `usage: ${command} [--from-beginning] [--exit-at-end] [-o json|yaml] [--min-severity LEVEL] [--detection ID] [--brokers LIST]\n\n` +
        'Prints each alert (OCSF Detection Finding) on the alerts topic as one line: when, severity,\n' +
        'detection, client, observed vs threshold, baseline, action. -o json prints each finding as one\n' +
        'JSON line; -o yaml as one YAML document.\n\n' +
        'Options:\n' +
        '      --from-beginning      start at the oldest alert kept, not at new ones\n' +
        '      --exit-at-end         stop at the alerts present now instead of waiting for more\n' +
        '      --min-severity LEVEL  low (default), medium, high or critical\n' +
        '      --detection ID        only this detection, e.g. rate.burst\n' +
        '      --brokers LIST        Kafka brokers, host:port,... (default: PALISADE_KAFKA_BROKERS)\n',
      options: { 'from-beginning': { type: 'boolean' }, 'exit-at-end': { type: 'boolean' }, 'min-severity': { type: 'string' }, detection: { type: 'string' }, brokers: { type: 'string' } },
      output: true,
    });
    const min = values['min-severity'] ?? 'low';
    if (!Object.hasOwn(RANK, min)) throw new UsageError(command, `--min-severity "${min}": use low, medium, high or critical`);
    const k = cliKafka('alerts', command, values.brokers);
    const { kafka, settings } = k;
    const topic = settings.kafkaTopicAlerts;
    const fromBeginning = values['from-beginning'] === true;
    const exitAtEnd = values['exit-at-end'] === true;
    const print = (event: unknown): string => (output === 'json' ? JSON.stringify(event) + '\n' : output === 'yaml' ? `---\n${toYaml(event, { lineWidth: 0 })}` : alertLine(event) + '\n');

    // With --exit-at-end: stop at the end offsets as they are now.
    const targets = new Map<number, bigint>();
    if (exitAtEnd) {
      for (const p of await k.use(() => fetchTopicEnds(kafka, topic), topic)) if (p.high > (fromBeginning ? p.low : p.high)) targets.set(p.partition, p.high);
      if (targets.size === 0) return EXIT_OK;
    }
    const groupId = `palisade-alerts-tail-${randomUUID()}`;
    let finished = false;
    const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 250, allowAutoTopicCreation: false, retry: retryUntilStopped(() => finished) });
    let finish!: () => void;
    const done = new Promise<void>((r) => (finish = r)).then(() => {
      finished = true;
    });
    process.once('SIGINT', () => finish());
    process.once('SIGTERM', () => finish());
    let connected = false;
    let announced = false;
    consumer.on(consumer.events.GROUP_JOIN, () => {
      if (announced || exitAtEnd) return;
      announced = true;
      process.stderr.write(`connected to Kafka at ${settings.kafkaBrokers}; waiting for ${fromBeginning ? 'alerts (from the oldest kept)' : 'new alerts'} on ${topic}${min === 'low' ? '' : ` (severity ${min} and above)`}; Ctrl-C to stop\n`);
    });
    try {
      await k.use(async () => {
        await consumer.connect();
        connected = true;
        await consumer.subscribe({ topics: [topic], fromBeginning });
      }, topic);
      await consumer.run({
        autoCommit: false,
        eachMessage: async ({ partition, message }) => {
          const target = targets.get(partition);
          if (exitAtEnd && (target === undefined || BigInt(message.offset) >= target)) return;
          let event: unknown;
          try {
            event = JSON.parse(message.value?.toString('utf8') ?? 'null');
          } catch {
            event = null;
          }
          if (isDetectionFinding(event)) {
            const p = event.unmapped.palisade;
            if ((RANK[p.severity] ?? 0) >= (RANK[min] ?? 0) && (!values.detection || p.detection === values.detection)) process.stdout.write(print(event));
          }
          if (target !== undefined && BigInt(message.offset) + 1n >= target) {
            targets.delete(partition);
            if (targets.size === 0) finish();
          }
        },
      });
      await done;
    } finally {
      finished = true;
      await consumer.disconnect().catch(() => undefined);
      // A consumer that never connected left no group behind (and the brokers may be unreachable).
      if (connected) {
        const admin = kafka.admin();
        await admin
          .connect()
          .then(() => admin.deleteGroups([groupId]))
          .catch(() => undefined)
          .finally(() => admin.disconnect().catch(() => undefined));
      }
    }
    return EXIT_OK;
  },
};

export const SUBCOMMANDS: Readonly<Record<string, Subcommand>> = { tail };

export function run(argv: string[]): Promise<number> {
  return dispatch('palisade alerts', argv, SUBCOMMANDS);
}
