/**
 * `palisade alerts tail`: prints the detector's alerts (OCSF Detection
 * Findings on the alerts topic) as they arrive, one line each, or as JSON.
 *
 *   palisade alerts tail [--from-beginning] [--exit-at-end] [--json] [--min-severity high] [--detection rate.burst]
 */
import { randomUUID } from 'node:crypto';
import { anomalyFromDetectionFinding, isDetectionFinding } from '../../decision/ocsf/detection-finding.ts';
import { PalisadeError } from '../../errors/codes.ts';
import { createKafkaClient, retryUntilStopped } from '../../kafka/client.ts';
import { fetchTopicEnds } from '../../kafka/offsets.ts';
import { createLogger } from '../../log/logger.ts';
import { parseFlags } from '../args.ts';
import { kafkaSettings, quietKafkajsTimerWarnings } from '../kafka-required.ts';

const RANK: Readonly<Record<string, number>> = { low: 0, medium: 1, high: 2, critical: 3 };

function fmt(n: number): string {
  return Math.abs(n) >= 100 ? String(Math.round(n)) : String(Number(n.toPrecision(3)));
}

/** One line for a finding: when, severity, detection, client, observed vs threshold, baseline, action, summary. */
export function alertLine(event: unknown): string {
  const a = anomalyFromDetectionFinding(event);
  const b = a.baseline;
  const action = a.response?.action === 'block' ? `BLOCKED until ${a.response.until ? new Date(a.response.until).toISOString() : 'removed'}` : 'alert';
  return (
    `${new Date(a.time).toISOString()} ${a.severity.toUpperCase().padEnd(8)} ${a.detection.padEnd(24)} ${a.client.key}` +
    ` observed ${fmt(a.observed)} > ${fmt(a.threshold)} ${a.unit} over ${a.window.seconds}s` +
    ` (baseline ${b.source}${b.source === 'none' ? '' : ` ${fmt(b.mean)}±${fmt(b.stddev)}`})${a.route ? ` route ${a.route}` : ''} ${action} alert=${a.id ?? '?'} evidence=${a.evidenceId}\n    ${a.summary}`
  );
}

export async function run(argv: string[]): Promise<number> {
  quietKafkajsTimerWarnings();
  const [sub, ...rest] = argv;
  if (sub !== 'tail') {
    process.stderr.write('usage: palisade alerts tail [--from-beginning] [--exit-at-end] [--json] [--min-severity low|medium|high|critical] [--detection ID]\n');
    return 2;
  }
  const { values } = parseFlags(
    rest,
    { 'from-beginning': { type: 'boolean' }, 'exit-at-end': { type: 'boolean' }, json: { type: 'boolean' }, 'min-severity': { type: 'string' }, detection: { type: 'string' }, brokers: { type: 'string' } },
    'palisade alerts tail',
  );
  const min = values['min-severity'] ?? 'low';
  if (!(min in RANK)) throw new PalisadeError('CONFIG_INVALID', `--min-severity "${min}": use low, medium, high or critical`);
  const settings = kafkaSettings('palisade alerts tail', process.env, values.brokers);
  const logger = createLogger({ level: 'warn', name: 'palisade-alerts' });
  const kafka = createKafkaClient(settings, logger);
  const topic = settings.kafkaTopicAlerts;
  const fromBeginning = values['from-beginning'] === true;

  // With --exit-at-end: stop at the end offsets as they are now.
  const targets = new Map<number, bigint>();
  if (values['exit-at-end']) {
    for (const p of await fetchTopicEnds(kafka, topic)) if (p.high > (fromBeginning ? p.low : p.high)) targets.set(p.partition, p.high);
    if (targets.size === 0) return 0;
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
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        const target = targets.get(partition);
        if (values['exit-at-end'] && (target === undefined || BigInt(message.offset) >= target)) return;
        let event: unknown;
        try {
          event = JSON.parse(message.value?.toString('utf8') ?? 'null');
        } catch {
          event = null;
        }
        if (isDetectionFinding(event)) {
          const p = event.unmapped.palisade;
          if ((RANK[p.severity] ?? 0) >= (RANK[min] ?? 0) && (!values.detection || p.detection === values.detection)) {
            process.stdout.write(values.json ? JSON.stringify(event) + '\n' : alertLine(event) + '\n');
          }
        }
        if (target !== undefined && BigInt(message.offset) + 1n >= target) {
          targets.delete(partition);
          if (targets.size === 0) finish();
        }
      },
    });
    await done;
  } finally {
    await consumer.disconnect().catch(() => undefined);
    const admin = kafka.admin();
    await admin
      .connect()
      .then(() => admin.deleteGroups([groupId]))
      .catch(() => undefined)
      .finally(() => admin.disconnect().catch(() => undefined));
  }
  return 0;
}
