/**
 * `palisade fleet status [--stale-after D] [--forget-after D] [-o json|yaml] [--brokers LIST]`:
 * which workloads run which policy right now, from the sidecars' status records
 * (src/fleet/). Exit 3 when a workload's live sidecars run more than one policy hash
 * (drift), so a GitOps check can gate on it; 0 otherwise.
 */
import { fleetReport, readFleet, type FleetReport } from '../../fleet/report.ts';
import { dispatch, EXIT_OK, formatOutput, formatTable, parseCommand, type Subcommand } from '../args.ts';
import { parseDurationFlag } from '../duration.ts';
import { cliKafka } from '../kafka-required.ts';

/** Exit code of `fleet status` when a workload drifts. */
export const EXIT_DRIFT = 3;

function text(r: FleetReport, topic: string): string {
  if (r.workloads.length === 0) return `no sidecar status on ${topic}`;
  const rows: string[][] = [];
  for (const w of r.workloads) {
    const policies = w.policies.map((p) => `${p.hash ? p.hash.slice(0, 12) : 'none'} ${p.name ?? ''}@${p.version ?? ''}${p.verified ? ` signed:${p.keyIds.join('+')}` : ' unsigned'} x${p.pods.length}`).join(', ');
    const refused = w.refused.map((x) => `${x.pod}: ${x.code}`).join('; ');
    rows.push([w.drift ? 'DRIFT' : 'ok', w.namespace, w.workload, String(w.sidecars), String(w.stale.length), policies || '-', refused || '-']);
  }
  const table = formatTable(['STATE', 'NAMESPACE', 'WORKLOAD', 'LIVE', 'STALE', 'POLICIES (hash name@version signature xcount)', 'REFUSED'], rows, 120);
  const details: string[] = [];
  for (const w of r.workloads) {
    if (w.drift) for (const p of w.policies) details.push(`drift ${w.namespace}/${w.workload}: ${p.hash ?? 'no policy'} on ${p.pods.join(', ')}`);
    for (const s of w.stale) details.push(`stale ${w.namespace}/${w.workload}: ${s.pod} (last seen ${s.lastSeen})`);
    for (const x of w.refused) details.push(`refused ${w.namespace}/${w.workload}: ${x.pod} ${x.code} at ${x.at}: ${x.reason}`);
  }
  return details.length ? `${table}\n${details.join('\n')}\n` : table;
}

const status: Subcommand = {
  summary: 'per workload: how many sidecars run which policy hash, stale ones, refusals; exit 3 on drift',
  async run(argv) {
    const command = 'palisade fleet status';
    const { values, output } = parseCommand(argv, {
      name: command,
      usage: `usage: ${command} [--stale-after DURATION] [--forget-after DURATION] [-o json|yaml] [--brokers LIST]

Reads the sidecars' status records (PALISADE_KAFKA_TOPIC_SIDECARS) and shows, per workload,
how many live sidecars run which policy hash (and whether it was signature-verified), the
stale ones (no record for a while: stopped without a clean shutdown, or cut off from Kafka),
and which refused a policy and why. A workload whose live sidecars run more than one hash is
marked DRIFT, and the command exits 3 (0 without drift), so a GitOps check can gate on it.

      --stale-after D       a sidecar with no record for this long is stale (default: 3 of its
                            publish intervals, at least 15s); e.g. 30s, 2m
      --forget-after D      stale records older than this are not shown (default 1h)
      --brokers LIST        Kafka brokers, host:port,... (default: PALISADE_KAFKA_BROKERS)
`,
      options: { 'stale-after': { type: 'string' }, 'forget-after': { type: 'string' }, brokers: { type: 'string' } },
      output: true,
    });
    const staleAfterMs = values['stale-after'] === undefined ? undefined : parseDurationFlag(values['stale-after'], '--stale-after', command);
    const forgetAfterMs = values['forget-after'] === undefined ? undefined : parseDurationFlag(values['forget-after'], '--forget-after', command);
    const k = cliKafka('fleet', command, values.brokers);
    const topic = k.settings.kafkaTopicSidecars;
    const records = await k.use(() => readFleet(k.kafka, topic), topic);
    const report = fleetReport(records, { ...(staleAfterMs !== undefined ? { staleAfterMs } : {}), ...(forgetAfterMs !== undefined ? { forgetAfterMs } : {}) });
    process.stdout.write(formatOutput(output, report, () => text(report, topic)));
    return report.drift ? EXIT_DRIFT : EXIT_OK;
  },
};

export function run(argv: string[]): Promise<number> {
  return dispatch('palisade fleet', argv, { status });
}
