/**
 * `palisade policy diff OLD NEW --decisions FILE [--json] [--max N]`
 *
 * Replays a recording of decisions (the NDJSON the sidecar writes: one OCSF
 * HTTP Activity event per line, or a plain decision record per line from
 * older recordings) against both policies' authorization and lists the
 * requests whose verdict changes, with the rule on each side. For review
 * before a merge. Exit status as diff(1): 0 no change, 1 changes, 2 trouble.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { DecisionRecord } from '../decision/record.ts';
import { recordFromOcsf } from '../decision/ocsf/read.ts';
import { PalisadeError } from '../errors/codes.ts';
import { createLogger } from '../log/logger.ts';
import { createServices } from '../sidecar/compose.ts';
import { parseFlags } from '../cli/args.ts';
import type { CompiledPolicy } from './compiled.ts';
import { createDiffer, describeOutcome, type DiffSummary } from './diff.ts';
import { loadPolicyFile } from './load.ts';

const USAGE = 'usage: palisade policy diff OLD NEW --decisions FILE [--json] [--max N]';

function isRecord(v: unknown): v is DecisionRecord {
  if (v === null || typeof v !== 'object') return false;
  const req = (v as { request?: unknown }).request;
  return req !== null && typeof req === 'object' && typeof (req as { method?: unknown }).method === 'string' && typeof (req as { path?: unknown }).path === 'string';
}

/** One NDJSON line -> a decision record (OCSF event or plain record). */
export function parseDecisionLine(line: string): DecisionRecord {
  const v: unknown = JSON.parse(line);
  if (v !== null && typeof v === 'object' && 'class_uid' in v) return recordFromOcsf(v);
  if (isRecord(v)) return v;
  throw new Error('neither an OCSF decision event (class_uid) nor a decision record (request.method/path)');
}

async function replay(file: string, oldPolicy: CompiledPolicy, newPolicy: CompiledPolicy, onBadLine: (line: number, why: string) => void): Promise<DiffSummary> {
  const differ = createDiffer(oldPolicy, newPolicy);
  const input = createReadStream(file, { encoding: 'utf8' });
  const opened = new Promise<void>((resolve, reject) => {
    input.once('open', () => resolve());
    input.once('error', (err: NodeJS.ErrnoException) => reject(new PalisadeError('CONFIG_INVALID', `--decisions ${file}: cannot read: ${err.code ?? err.message}`)));
  });
  await opened;
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

export async function run(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parseFlags(argv, { decisions: { type: 'string' }, json: { type: 'boolean' }, max: { type: 'string', default: '50' } }, 'palisade policy diff');
    const [oldFile, newFile] = positionals;
    if (!oldFile || !newFile || !values.decisions || positionals.length !== 2) throw new PalisadeError('CONFIG_INVALID', USAGE);
    const max = Number(values.max);
    if (!Number.isInteger(max) || max < 1) throw new PalisadeError('CONFIG_INVALID', `--max must be a positive integer, got "${values.max}"`);
    const services = () => createServices(createLogger({ level: 'silent' }));
    const [oldPolicy, newPolicy] = [await loadPolicyFile(oldFile, services()), await loadPolicyFile(newFile, services())];
    const bad: string[] = [];
    let badCount = 0;
    const summary = await replay(values.decisions, oldPolicy, newPolicy, (line, why) => {
      badCount++;
      if (bad.length < 5) bad.push(`line ${line}: ${why}`);
    });
    if (badCount > 0) process.stderr.write(`palisade policy diff: skipped ${badCount} unreadable line(s) of ${values.decisions}:\n  ${bad.join('\n  ')}\n`);
    const side = (p: CompiledPolicy) => ({ file: p === oldPolicy ? oldFile : newFile, name: p.name, version: p.version, hash: p.hash });
    if (values.json) {
      process.stdout.write(JSON.stringify({ old: side(oldPolicy), new: side(newPolicy), ...summary, changes: summary.changes.slice(0, max), unreadableLines: badCount }, null, 2) + '\n');
    } else {
      const out: string[] = [];
      out.push(`old: ${oldFile} policy "${oldPolicy.name}" version ${oldPolicy.version} (${oldPolicy.hash.slice(0, 12)})`);
      out.push(`new: ${newFile} policy "${newPolicy.name}" version ${newPolicy.version} (${newPolicy.hash.slice(0, 12)})`);
      out.push(`replayed ${summary.replayed} recorded request(s) through authorization${summary.skipped ? ` (${summary.skipped} without a request skipped)` : ''}`);
      if (summary.changes.length === 0) out.push('no verdict changes');
      else {
        out.push(`${summary.changedRequests} request(s) change verdict, ${summary.changes.length} distinct:`);
        for (const c of summary.changes.slice(0, max)) {
          out.push(`  ${c.method} ${c.path}  host=${c.host || '-'}  identity=${c.subject ?? '(none)'}  x${c.count}`);
          out.push(`    old: ${describeOutcome(c.old)}`);
          out.push(`    new: ${describeOutcome(c.new)}`);
          if (c.recorded.decidedBy !== 'authz' && c.recorded.decidedBy !== 'forward') out.push(`    (recorded: ${c.recorded.verdict} ${c.recorded.code} by ${c.recorded.decidedBy}, before authorization)`);
        }
        if (summary.changes.length > max) out.push(`  ... ${summary.changes.length - max} more (--max N or --json)`);
      }
      process.stdout.write(out.join('\n') + '\n');
    }
    return summary.changes.length > 0 ? 1 : 0;
  } catch (err) {
    if (err instanceof PalisadeError) {
      process.stderr.write(`palisade: ${err.code}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
