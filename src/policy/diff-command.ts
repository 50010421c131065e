/**
 * `palisade policy diff OLD NEW --decisions FILE [--max N] [-o json|yaml]`
 *
 * Replays a recording of decisions (the NDJSON the sidecar writes: one OCSF
 * HTTP Activity event per line, or a plain decision record per line from
 * older recordings) through every stage of both policies (replay.ts) and
 * lists the requests whose outcome changes, with the verdict, code, stage
 * and rule on each side; then the policy changes the recording cannot show
 * (diff-scope.ts). For review before a merge, and as a CI gate.
 *
 * Exit status: 0 no change; 3 outcomes change; 4 no outcome changes among
 * the replayed requests, but the policies differ where a recording cannot
 * tell (review those by hand); 1 trouble (unreadable file, invalid policy);
 * 2 usage.
 */
import { createReadStream } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { formatOutput, parseCommand, UsageError } from '../cli/args.ts';
import { decodeDecision } from '../decision/encode.ts';
import type { DecisionRecord } from '../decision/record.ts';
import { PalisadeError } from '../errors/codes.ts';
import type { CompiledPolicy } from './compiled.ts';
import { createDiffer, describeOutcome, type DiffSummary } from './diff.ts';
import type { Unreplayed } from './diff-scope.ts';

export const EXIT_NO_CHANGE = 0;
export const EXIT_CHANGES = 3;
export const EXIT_UNREPLAYED = 4;

export const DIFF_USAGE = `usage: palisade policy diff OLD NEW --decisions FILE [--max N] [-o json|yaml]

Replays recorded decisions (the sidecar's NDJSON: OCSF events, or plain
decision records) through every stage of both policies and lists the requests
whose verdict, code, stage or rule changes. Then names each policy change the
recording cannot show (token verification, rate limits, body/query/header
checks), so "no change" is never said of something that was not checked.

exit status: 0 no change, 3 outcomes change, 4 no outcome changes but changes
the recording cannot show, 1 trouble (unreadable file, invalid policy), 2 usage

options:
  --decisions FILE      the recording (NDJSON), required; "-" reads it from stdin
  --max N               list at most N changes (default 50; JSON/YAML list all)
`;

function isRecord(v: unknown): v is DecisionRecord {
  if (v === null || typeof v !== 'object') return false;
  const req = (v as { request?: unknown }).request;
  return req !== null && typeof req === 'object' && typeof (req as { method?: unknown }).method === 'string' && typeof (req as { path?: unknown }).path === 'string';
}

/** One NDJSON line -> a decision record (OCSF event or plain record). */
export function parseDecisionLine(line: string): DecisionRecord {
  const v: unknown = JSON.parse(line);
  if (v !== null && typeof v === 'object' && 'class_uid' in v) return decodeDecision(v);
  if (isRecord(v)) return v;
  throw new Error('neither an OCSF decision event (class_uid) nor a decision record (request.method/path)');
}

async function replay(file: string, oldPolicy: CompiledPolicy, newPolicy: CompiledPolicy, onBadLine: (line: number, why: string) => void): Promise<DiffSummary> {
  const differ = createDiffer(oldPolicy, newPolicy);
  // "-": the recording arrives on stdin (kcat ... | palisade policy diff OLD NEW --decisions -).
  const input = file === '-' ? process.stdin.setEncoding('utf8') : createReadStream(file, { encoding: 'utf8' });
  if (file !== '-') {
    await new Promise<void>((res, rej) => {
      input.once('open', () => res());
      input.once('error', (err: NodeJS.ErrnoException) => rej(new PalisadeError('CONFIG_INVALID', `--decisions ${file}: cannot read: ${err.code ?? err.message}`)));
    });
  }
  let n = 0;
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    n++;
    if (line.trim().length === 0) continue;
    try {
      differ.add(parseDecisionLine(line));
    } catch (err) {
      onBadLine(n, (err as Error).message);
    }
  }
  return differ.summary();
}

const STAGES_REPLAYED = 'block list, authentication (requirements and mTLS rules; token outcomes as recorded), rate limits (outcomes as recorded), authorization, validation (routes and path parameters; other outcomes as recorded)';

export async function run(argv: string[]): Promise<number> {
  const { values, positionals, output } = parseCommand(argv, {
    name: 'palisade policy diff',
    usage: DIFF_USAGE,
    options: { decisions: { type: 'string' }, max: { type: 'string', default: '50' } },
    positionals: { min: 2, max: 2, name: 'policy files (OLD NEW)' },
    output: true,
  });
  const [oldFile, newFile] = positionals as [string, string];
  if (!values.decisions) throw new UsageError('palisade policy diff', '--decisions FILE is required (the recorded decisions, NDJSON)');
  const max = Number(values.max);
  if (!Number.isInteger(max) || max < 1) throw new UsageError('palisade policy diff', `--max must be a positive integer, got "${values.max}"`);
  // The compiler and its services only once the command line is right: --help answers without them.
  const [{ loadPolicyFile }, { createServices }, { createLogger }, { unreplayedChanges }] = await Promise.all([import('./load.ts'), import('../sidecar/compose.ts'), import('../log/logger.ts'), import('./diff-scope.ts')]);
  const services = () => createServices(createLogger({ level: 'silent' }));
  const oldPolicy = await loadPolicyFile(oldFile, services());
  const newPolicy = await loadPolicyFile(newFile, services());
  const unreplayed: Unreplayed[] = unreplayedChanges({ policy: oldPolicy, baseDir: dirname(resolve(oldFile)) }, { policy: newPolicy, baseDir: dirname(resolve(newFile)) });
  const bad: string[] = [];
  let badCount = 0;
  const summary = await replay(values.decisions, oldPolicy, newPolicy, (line, why) => {
    badCount++;
    if (bad.length < 5) bad.push(`line ${line}: ${why}`);
  });
  if (badCount > 0) process.stderr.write(`palisade policy diff: skipped ${badCount} unreadable line(s) of ${values.decisions}:\n  ${bad.join('\n  ')}\n`);
  const side = (p: CompiledPolicy, file: string) => ({ file, name: p.name, version: p.version, hash: p.hash });
  const record = { old: side(oldPolicy, oldFile), new: side(newPolicy, newFile), ...summary, unreplayed, unreadableLines: badCount };
  process.stdout.write(
    formatOutput(output, record, () => {
      const out: string[] = [];
      out.push(`old: ${oldFile} policy "${oldPolicy.name}" version ${oldPolicy.version} (${oldPolicy.hash.slice(0, 12)})`);
      out.push(`new: ${newFile} policy "${newPolicy.name}" version ${newPolicy.version} (${newPolicy.hash.slice(0, 12)})`);
      out.push(`replayed ${summary.replayed} recorded request(s) through every stage: ${STAGES_REPLAYED}${summary.skipped ? ` (${summary.skipped} refused before any stage, skipped)` : ''}`);
      if (summary.otherPolicy > 0) out.push(`note: ${summary.otherPolicy} of them were recorded under another policy than OLD; their recorded rate-limit, token and body outcomes come from that policy`);
      if (summary.changes.length === 0) out.push('no outcome changes among the replayed requests');
      else {
        out.push(`${summary.changedRequests} request(s) change outcome, ${summary.changes.length} distinct:`);
        for (const c of summary.changes.slice(0, max)) {
          out.push(`  ${c.method} ${c.path}  host=${c.host || '-'}  identity=${c.subject ?? '(none)'}  x${c.count}`);
          out.push(`    old: ${describeOutcome(c.old)}`);
          out.push(`    new: ${describeOutcome(c.new)}`);
          for (const note of new Set([...c.old.notes, ...c.new.notes])) out.push(`    (${note})`);
        }
        if (summary.changes.length > max) out.push(`  ... ${summary.changes.length - max} more (--max N or -o json)`);
      }
      if (unreplayed.length > 0) {
        out.push(`NOT REPLAYED: ${unreplayed.length} policy change(s) the recorded events cannot show; review them by hand:`);
        for (const u of unreplayed) out.push(`  ${u.stage}: ${u.what}: ${u.why}`);
      }
      return out.join('\n');
    }),
  );
  if (summary.changes.length > 0) return EXIT_CHANGES;
  return unreplayed.length > 0 ? EXIT_UNREPLAYED : EXIT_NO_CHANGE;
}
