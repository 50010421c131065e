/**
 * `palisade inject [FILE...]`: reads Kubernetes YAML (files, or stdin when no file
 * or "-" is given), adds the Palisade sidecar to every workload, and writes the
 * result to stdout (or --output FILE, or back with --in-place). Like
 * `linkerd inject`: kubectl get deploy x -o yaml | palisade inject | kubectl apply -f -
 * Nothing is written unless every input injected cleanly.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { InjectError } from '../../deploy/inject/errors.ts';
import { injectManifest, MAX_INPUT_BYTES, type ObjectReport } from '../../deploy/inject/manifest.ts';
import { INJECT_OPTIONS, injectOptionsTable, resolveInjectOptions, type InjectOptionName } from '../../deploy/inject/options.ts';
import { EXIT_OK, friendlyParseError, UsageError, wantsHelp } from '../args.ts';

const USAGE = `usage: palisade inject [options] [FILE|-]...

Adds the Palisade sidecar to Deployments, StatefulSets, DaemonSets, ReplicaSets,
Jobs, CronJobs and Pods, and points matching Services at it. Reads stdin when no
FILE (or "-") is given; writes stdout. Injecting twice changes nothing (the summary
on stderr says "unchanged").

  -o, --output FILE        write the result to FILE instead of stdout
  -i, --in-place           rewrite each FILE
      --fallback           same as --mode container (clusters before Kubernetes 1.29)
      --skip-unknown-kinds copy kinds palisade does not know through unchanged
  -q, --quiet              no summary on stderr
  -h, --help               this help

Sidecar options (a pod's palisade.dev/* annotations override some of them):
`;

function optionConfig(): ParseArgsConfig['options'] {
  const options: NonNullable<ParseArgsConfig['options']> = {
    output: { type: 'string', short: 'o' },
    'in-place': { type: 'boolean', short: 'i' },
    fallback: { type: 'boolean' },
    'skip-unknown-kinds': { type: 'boolean' },
    quiet: { type: 'boolean', short: 'q' },
    help: { type: 'boolean', short: 'h' },
  };
  for (const spec of Object.values(INJECT_OPTIONS)) options[spec.flag] = { type: 'string' };
  return options;
}

export async function run(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(`${USAGE}\n${injectOptionsTable()}\n`);
    return EXIT_OK;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: optionConfig(), allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError('palisade inject', friendlyParseError(err as Error));
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const positionals = parsed.positionals;
  const inPlace = values['in-place'] === true;
  const output = values['output'] as string | undefined;
  const files = positionals.length > 0 ? positionals : ['-'];
  if (inPlace && (output !== undefined || files.includes('-'))) throw new UsageError('palisade inject', '--in-place needs FILE arguments and no --output');
  // Elsewhere -o picks a format; here it names a file: "-o yaml" is far more likely that mistake.
  if (output !== undefined && /^(json|yaml|text|wide)$/.test(output)) {
    throw new UsageError('palisade inject', `-o ${output}: for inject, -o names the output FILE (the output is always YAML, or JSON for JSON input); write ./${output} for a file of that name`);
  }

  try {
    const raw: Partial<Record<InjectOptionName, unknown>> = {};
    for (const [name, spec] of Object.entries(INJECT_OPTIONS)) raw[name as InjectOptionName] = values[spec.flag];
    if (values['fallback']) {
      if (raw.mode !== undefined && raw.mode !== 'container') throw new InjectError('INJECT_OPTIONS_INVALID', `--fallback contradicts --mode ${String(raw.mode)}`);
      raw.mode = 'container';
    }
    const opts = resolveInjectOptions(raw);

    // Inject everything in memory first: an error leaves every file as it was.
    const results: { file: string; output: string; reports: readonly ObjectReport[] }[] = [];
    for (const file of files) {
      const source = file === '-' ? 'stdin' : file;
      const text = file === '-' ? await readStdin() : await readInput(file);
      const r = injectManifest(text, opts, { source, skipUnknownKinds: values['skip-unknown-kinds'] === true });
      results.push({ file, ...r });
    }

    if (inPlace) {
      for (const r of results) await writeAtomically(r.file, r.output);
    } else {
      // One stream: each file's output ends its line, and the next starts a document.
      const text = results
        .map((r) => r.output)
        .filter((o) => o !== '')
        .map((o, i) => `${i > 0 && !o.startsWith('---') ? '---\n' : ''}${o.endsWith('\n') ? o : `${o}\n`}`)
        .join('');
      if (output !== undefined) await writeAtomically(output, text);
      else await writeStdout(text);
    }
    if (!values['quiet']) {
      for (const r of results) {
        for (const rep of r.reports) {
          if (rep.status === 'passed-through') continue;
          process.stderr.write(`${rep.object} ${rep.status}${rep.reason ? ` (${rep.reason})` : ''}\n`);
        }
      }
    }
    return 0;
  } catch (err) {
    if (err instanceof InjectError) {
      process.stderr.write(`palisade inject: ${err.code}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

async function readInput(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new InjectError('INJECT_YAML_INVALID', `${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > MAX_INPUT_BYTES) throw new InjectError('INJECT_INPUT_TOO_LARGE', `stdin: input is larger than ${MAX_INPUT_BYTES} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Temp file beside the target, then rename: a reader sees the old or the new file, never half. */
async function writeAtomically(file: string, text: string): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, text, { flag: 'wx' });
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new InjectError('INJECT_OPTIONS_INVALID', `${file}: cannot write: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function writeStdout(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(text, (err) => (err ? reject(err) : resolve()));
  });
}
