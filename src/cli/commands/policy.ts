/**
 * `palisade policy check FILE...`        validate offline exactly as the sidecar would
 * `palisade policy explain FILE ...`     which stage and rule decide a sample request, and why
 * `palisade policy test POLICY TESTS...` sample requests with their expected verdicts, as `opa test`
 * `palisade policy diff OLD NEW ...`     replay recorded decisions through both policies
 * `palisade policy sign|verify FILE ...` cosign sign-blob signatures (./policy-sign.ts)
 *
 * Exit status (README, "The palisade command"): 0 yes (valid, allowed, every
 * test passes, no change); 3 the answer is no (explain: denied; test: a test
 * failed; diff: outcomes change); 4 diff only: no outcome changes but changes
 * a recording cannot show; 1 trouble (unreadable file, refused policy); 2 the
 * command line is wrong.
 */
import { readFileSync } from 'node:fs';
import { dispatch, EXIT_FAILURE, EXIT_OK, formatOutput, parseCommand, UsageError } from '../args.ts';
import { PalisadeError } from '../../errors/codes.ts';
import type { CompiledPolicy } from '../../policy/compiled.ts';
import type { ExplainResult } from '../../policy/explain.ts';
import type { TestResult } from '../../policy/test-suite.ts';

/** explain: denied; test: a test failed; diff: outcomes change. */
export const EXIT_NO = 3;

/**
 * The policy compiler and its services, loaded once the command line is
 * known to be right: `--help` and usage errors answer without them.
 */
async function compiler() {
  const [{ loadPolicyFile }, { createServices }, { createLogger }] = await Promise.all([import('../../policy/load.ts'), import('../../sidecar/compose.ts'), import('../../log/logger.ts')]);
  return (file: string) => loadPolicyFile(file, createServices(createLogger({ level: 'silent' })));
}

const CHECK_USAGE = `usage: palisade policy check FILE... [-o json|yaml]

Validates each policy offline with the sidecar's own code (schema, then every
stage compiled), so CI and the cluster cannot disagree. Prints name, version
and hash of each valid one, the field, value and fix of each refused one.

exit status: 0 every policy is valid, 1 one or more are refused, 2 usage

options:
`;

async function check(argv: string[]): Promise<number> {
  const { positionals, output } = parseCommand(argv, { name: 'palisade policy check', usage: CHECK_USAGE, options: {}, positionals: { min: 1, max: Infinity, name: 'policy file' }, output: true });
  const load = await compiler();
  const results: ({ file: string; valid: true; name: string; version: string; hash: string } | { file: string; valid: false; code: string; error: string })[] = [];
  for (const file of positionals) {
    try {
      const p = await load(file);
      results.push({ file, valid: true, name: p.name, version: p.version, hash: p.hash });
    } catch (err) {
      results.push({ file, valid: false, code: err instanceof PalisadeError ? err.code : 'POLICY_INVALID', error: (err as Error).message });
    }
  }
  if (output === 'text') {
    for (const r of results) {
      if (r.valid) process.stdout.write(`ok   ${r.file}: policy "${r.name}" version ${r.version}, hash ${r.hash}\n`);
      else process.stderr.write(`FAIL ${r.file}: ${r.code}: ${r.error}\n`);
    }
  } else process.stdout.write(formatOutput(output, results, () => ''));
  return results.every((r) => r.valid) ? EXIT_OK : EXIT_FAILURE;
}

const EXPLAIN_USAGE = `usage: palisade policy explain FILE --path P [--method M] [--host H] [--ip ADDR]
         [--spiffe-id ID] [--subject S] [--claims JSON] [--scope S]... [--group G]...
         [--issuer I] [--client-id C] [-H 'name: value']... [--body FILE] [-o json|yaml]

Walks a sample request through every stage of the policy, in the sidecar's
order, and says which stage and rule decide it, and why: the block list, the
authentication requirement (the sample identity stands for credentials that
verified), rate limits, authorization (the values of a failed condition),
limits and the API schema (on the headers and body given). The headers are
first read as the sidecar reads them: a singleton sent twice, a method or a
path override is refused or normalized as spec.headers says.

exit status: 0 allowed (dry-run denies included), 3 denied, 1 trouble
(unreadable file, refused policy), 2 usage

options:
  --path P              request target, with ?query if any (required)
  --method M            default GET
  --host H              Host header, default localhost
  --ip ADDR             client IP (block list)
  --spiffe-id ID        the mTLS peer's SPIFFE ID
  --subject S           a token subject (the request carries a token that verified)
  --claims JSON         that token's claims, e.g. '{"tenant":"acme","scope":"orders:read"}'
  --scope S, --group G  scopes and groups of the token (repeatable)
  --issuer I, --client-id C
  --identity ID         a SPIFFE ID (spiffe://...) or a subject
  -H, --header 'N: V'   a request header (repeatable)
  --body FILE           the request body, read from FILE ("-" for stdin)
`;

/** -H lines as sent, in order: a name given twice is two header lines (the duplicate check sees both). */
function parseHeaders(list: readonly string[] | undefined): [string, string][] {
  const out: [string, string][] = [];
  for (const h of list ?? []) {
    const i = h.indexOf(':');
    if (i <= 0) throw new UsageError('palisade policy explain', `-H "${h}": write a header as 'name: value'`);
    const name = h.slice(0, i).trim().toLowerCase();
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) throw new UsageError('palisade policy explain', `-H "${h}": "${name}" is not a header name`);
    out.push([name, h.slice(i + 1).trim()]);
  }
  return out;
}

function readBody(file: string | undefined): Buffer | null {
  if (file === undefined) return null;
  try {
    return readFileSync(file === '-' ? 0 : file);
  } catch (err) {
    throw new PalisadeError('CONFIG_INVALID', `--body ${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function explainText(policy: Pick<CompiledPolicy, 'name' | 'version' | 'hash'>, result: ExplainResult): string {
  const out: string[] = [];
  out.push(`policy "${policy.name}" version ${policy.version} (hash ${policy.hash.slice(0, 12)})`);
  out.push(`request ${result.method} ${result.path}${result.normalizedFrom ? ` (normalized from ${result.normalizedFrom})` : ''}`);
  for (const line of result.trace) out.push(`  - ${line}`);
  out.push(`verdict: ${result.verdict.toUpperCase()}${result.code ? ` ${result.code}` : ''}${result.rule ? ` by rule "${result.rule}"` : ''}${result.stage ? ` at stage ${result.stage}` : ''}`);
  for (const w of result.wouldDeny) out.push(`would deny (audit): ${w.code} at stage ${w.stage}${w.rule ? ` by rule "${w.rule}"` : ''}`);
  return out.join('\n');
}

async function explain(argv: string[]): Promise<number> {
  const { values, positionals, output } = parseCommand(argv, {
    name: 'palisade policy explain',
    usage: EXPLAIN_USAGE,
    options: {
      method: { type: 'string', default: 'GET' },
      path: { type: 'string' },
      host: { type: 'string', default: 'localhost' },
      'spiffe-id': { type: 'string' },
      subject: { type: 'string' },
      issuer: { type: 'string' },
      scope: { type: 'string', multiple: true },
      group: { type: 'string', multiple: true },
      claims: { type: 'string' },
      'client-id': { type: 'string' },
      identity: { type: 'string' },
      ip: { type: 'string' },
      header: { type: 'string', short: 'H', multiple: true },
      body: { type: 'string' },
    },
    positionals: { min: 1, max: 1, name: 'policy file' },
    output: true,
  });
  if (!values.path) throw new UsageError('palisade policy explain', '--path is required (the request target, e.g. --path /orders/1)');
  if (!values.path.startsWith('/')) throw new UsageError('palisade policy explain', `--path "${values.path}": give the request target as an absolute path, e.g. /orders/1`);
  const headers = parseHeaders(values.header);
  const body = readBody(values.body);
  const policy = await (await compiler())(positionals[0] as string);
  const { explainRequest, identityFromFlags } = await import('../../policy/explain.ts');
  const identity = identityFromFlags({
    identity: values.identity,
    spiffeId: values['spiffe-id'],
    subject: values.subject,
    issuer: values.issuer,
    scopes: values.scope,
    groups: values.group,
    claims: values.claims,
    clientId: values['client-id'],
  });
  const result = await explainRequest(policy, { method: values.method.toUpperCase(), path: values.path, host: values.host, identity, clientIp: values.ip ?? null, headers, body });
  process.stdout.write(formatOutput(output, result, () => explainText(policy, result)));
  return result.verdict === 'deny' ? EXIT_NO : EXIT_OK;
}

const TEST_USAGE = `usage: palisade policy test POLICY TESTFILE... [-v] [-o json|yaml]

Runs sample requests against a policy and checks each gets the verdict (and
code, stage, rule, dry-run denies) its test expects, as \`opa test\` does.
Each test file (YAML or JSON) holds:

  tests:
    - name: web reads an order
      request: { method: GET, path: /orders/1, spiffeId: "spiffe://prod/ns/shop/sa/web" }
      expect: { verdict: allow, rule: orders-read }
    - name: anonymous is refused
      request: { path: /orders/1 }
      expect: { verdict: deny, code: AUTHN_PEER_REQUIRED, stage: authn }

request: method (GET), path (required, may hold ?query), host (localhost), ip,
spiffeId, subject, issuer, clientId, scopes, groups, claims (a token that
verified), headers, body or bodyFile (relative to the test file).
expect: verdict (allow | deny, required), code, stage, rule, wouldDeny (codes).

exit status: 0 every test passes, 3 a test fails, 1 trouble (unreadable or
invalid file, refused policy), 2 usage

options:
  -v, --verbose         the trace of passing tests too (failing ones always)
`;

async function test(argv: string[]): Promise<number> {
  const { values, positionals, output } = parseCommand(argv, {
    name: 'palisade policy test',
    usage: TEST_USAGE,
    options: { verbose: { type: 'boolean', short: 'v' } },
    positionals: { min: 2, max: Infinity, name: 'POLICY and test files' },
    output: true,
  });
  const [policyFile, ...files] = positionals as [string, ...string[]];
  const { runTestFile } = await import('../../policy/test-suite.ts');
  const policy = await (await compiler())(policyFile);
  const suites: { file: string; results: TestResult[] }[] = [];
  for (const file of files) suites.push({ file, results: await runTestFile(policy, file) });
  const all = suites.flatMap((s) => s.results);
  const failed = all.filter((r) => !r.passed).length;
  const record = { policy: { file: policyFile, name: policy.name, version: policy.version, hash: policy.hash }, passed: all.length - failed, failed, suites };
  process.stdout.write(
    formatOutput(output, record, () => {
      const out: string[] = [`policy "${policy.name}" version ${policy.version} (hash ${policy.hash.slice(0, 12)})`];
      for (const s of suites) {
        out.push(`${s.file}:`);
        for (const r of s.results) {
          out.push(`  ${r.passed ? 'ok  ' : 'FAIL'} ${r.name}`);
          for (const f of r.failures) out.push(`       ${f}`);
          if (!r.passed || values.verbose) for (const line of r.got.trace) out.push(`       | ${line}`);
        }
      }
      out.push(`${all.length - failed} passed, ${failed} failed`);
      return out.join('\n');
    }),
  );
  return failed === 0 ? EXIT_OK : EXIT_NO;
}

export async function run(argv: string[]): Promise<number> {
  return dispatch('palisade policy', argv, {
    check: { summary: 'check FILE...: validate policies offline exactly as the sidecar would', run: check },
    explain: { summary: 'explain FILE --path P [...]: which stage and rule decide a sample request, and why', run: explain },
    test: { summary: 'test POLICY TESTFILE...: sample requests with their expected verdicts (as opa test)', run: test },
    diff: {
      summary: 'diff OLD NEW --decisions FILE: replay recorded decisions through both policies',
      run: async (rest) => (await import('../../policy/diff-command.ts')).run(rest),
    },
    sign: { summary: 'sign FILE --key KEY.pem: a cosign sign-blob signature beside the policy (FILE.sig)', run: async (rest) => (await import('./policy-sign.ts')).sign.run(rest) },
    verify: { summary: 'verify FILE [--key PUB.pem]: check a policy signature as the sidecar does', run: async (rest) => (await import('./policy-sign.ts')).verify.run(rest) },
  });
}
