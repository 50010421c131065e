/**
 * `palisade policy test`: a file of sample requests, each with the verdict
 * (and optionally the code, stage, rule and dry-run denies) the policy must
 * give it, run through the same evaluation as `policy explain`; as `opa
 * test` does for Rego. A policy change that breaks an expectation fails CI
 * before it reaches a sidecar.
 *
 * The file (YAML or JSON) is validated by its own schema; a wrong field is
 * refused with its place and the fix, like a policy.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isCode, PalisadeError, type Code } from '../errors/codes.ts';
import { STAGE_NAMES } from '../pipeline/types.ts';
import { createAjv, describeAjvErrors } from '../util/ajv.ts';
import type { CompiledPolicy } from './compiled.ts';
import { explainRequest, identityFromFlags, type ExplainResult } from './explain.ts';
import { parsePolicyText } from './load.ts';

export interface SampleRequest {
  readonly method: string;
  readonly path: string;
  readonly host: string;
  readonly ip?: string;
  readonly spiffeId?: string;
  readonly subject?: string;
  readonly issuer?: string;
  readonly clientId?: string;
  readonly scopes?: string[];
  readonly groups?: string[];
  readonly claims?: Record<string, unknown>;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  readonly bodyFile?: string;
}

export interface Expectation {
  readonly verdict: 'allow' | 'deny';
  readonly code?: Code;
  readonly stage?: string;
  readonly rule?: string | null;
  /** Exactly these dry-run denies (codes), in order. */
  readonly wouldDeny?: Code[];
}

export interface PolicyTestCase {
  readonly name: string;
  readonly request: SampleRequest;
  readonly expect: Expectation;
}

export interface PolicyTestFile {
  readonly tests: PolicyTestCase[];
}

const STAGES = [...STAGE_NAMES.filter((s) => s !== 'forward'), 'request'];

const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['tests'],
  properties: {
    tests: {
      type: 'array',
      minItems: 1,
      description: 'The sample requests, each with what the policy must answer.',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'request', 'expect'],
        properties: {
          name: { type: 'string', minLength: 1, description: 'Shown in the report; unique in the file.' },
          request: {
            type: 'object',
            additionalProperties: false,
            required: ['path'],
            properties: {
              method: { type: 'string', pattern: '^[A-Za-z]+$', default: 'GET', description: 'HTTP method. Default GET.' },
              path: { type: 'string', pattern: '^/', description: 'Request target: path, optionally with ?query.' },
              host: { type: 'string', minLength: 1, default: 'localhost', description: 'Host header. Default localhost.' },
              ip: { type: 'string', description: 'Client IP (block list, rate-limit keys). Default: none.' },
              spiffeId: { type: 'string', pattern: '^spiffe://', description: 'The mTLS peer\'s SPIFFE ID.' },
              subject: { type: 'string', description: 'Token subject: the request carries a token that verified.' },
              issuer: { type: 'string' },
              clientId: { type: 'string' },
              scopes: { type: 'array', items: { type: 'string' } },
              groups: { type: 'array', items: { type: 'string' } },
              claims: { type: 'object', description: 'Token claims: the request carries a token that verified.' },
              headers: { type: 'object', additionalProperties: { type: 'string' }, description: 'Request headers (limits, header schemas).' },
              body: { type: 'string', description: 'Request body as text.' },
              bodyFile: { type: 'string', minLength: 1, description: 'Request body from a file, relative to the test file.' },
            },
            not: { required: ['body', 'bodyFile'] },
          },
          expect: {
            type: 'object',
            additionalProperties: false,
            required: ['verdict'],
            properties: {
              verdict: { enum: ['allow', 'deny'], description: 'allow (dry-run denies included) or deny.' },
              code: { type: 'string', description: 'The stable code of the deny (docs/codes.md).' },
              stage: { enum: STAGES, description: 'The stage that denies.' },
              rule: { type: ['string', 'null'], description: 'The deciding rule: the allow rule, or the rule/requirement/entry that denies (null: none).' },
              wouldDeny: { type: 'array', items: { type: 'string' }, description: 'Exactly these dry-run (audit) deny codes, in pipeline order.' },
            },
          },
        },
      },
    },
  },
} as const;

const validate = createAjv().compile<PolicyTestFile>(schema);

export function readTestFile(file: string): PolicyTestFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PalisadeError('CONFIG_INVALID', `${file}: cannot read test file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let data: unknown;
  try {
    data = parsePolicyText(text, file);
  } catch (err) {
    throw new PalisadeError('CONFIG_INVALID', (err as Error).message);
  }
  if (!validate(data)) throw new PalisadeError('CONFIG_INVALID', `${file}: invalid test file:\n  - ${describeAjvErrors(validate.errors, 'tests file', data).join('\n  - ')}`);
  const problems: string[] = [];
  const names = new Set<string>();
  data.tests.forEach((t, i) => {
    if (names.has(t.name)) problems.push(`tests[${i}].name: "${t.name}" is used twice; give each test its own name`);
    names.add(t.name);
    for (const c of [t.expect.code, ...(t.expect.wouldDeny ?? [])]) {
      if (c !== undefined && !isCode(c)) problems.push(`tests[${i}] (${t.name}): "${c}" is not a Palisade code; see docs/codes.md`);
    }
    if (t.expect.verdict === 'allow' && (t.expect.code !== undefined || t.expect.stage !== undefined)) problems.push(`tests[${i}] (${t.name}): expect.code and expect.stage name a deny; remove them or expect verdict: deny`);
  });
  if (problems.length > 0) throw new PalisadeError('CONFIG_INVALID', `${file}: invalid test file:\n  - ${problems.join('\n  - ')}`);
  return data;
}

export interface TestResult {
  readonly name: string;
  readonly passed: boolean;
  /** What differed, one line each; empty when passed. */
  readonly failures: readonly string[];
  readonly expected: Expectation;
  readonly got: Pick<ExplainResult, 'verdict' | 'code' | 'stage' | 'rule' | 'wouldDeny' | 'trace'>;
}

function describe(r: Pick<ExplainResult, 'verdict' | 'code' | 'stage' | 'rule'>): string {
  if (r.verdict === 'allow') return `allow${r.rule ? ` by rule "${r.rule}"` : ''}`;
  return `deny ${r.code} at ${r.stage}${r.rule ? ` by rule "${r.rule}"` : ''}`;
}

export async function runTestCase(policy: CompiledPolicy, t: PolicyTestCase, baseDir: string): Promise<TestResult> {
  const q = t.request;
  let body: Buffer | null = null;
  if (q.body !== undefined) body = Buffer.from(q.body, 'utf8');
  else if (q.bodyFile !== undefined) {
    const f = resolve(baseDir, q.bodyFile);
    try {
      body = readFileSync(f);
    } catch (err) {
      throw new PalisadeError('CONFIG_INVALID', `test "${t.name}": request.bodyFile ${f}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const identity = identityFromFlags({ spiffeId: q.spiffeId, subject: q.subject, issuer: q.issuer, clientId: q.clientId, scopes: q.scopes, groups: q.groups, claims: q.claims });
  const got = await explainRequest(policy, { method: q.method.toUpperCase(), path: q.path, host: q.host, identity, clientIp: q.ip ?? null, headers: q.headers ?? {}, body });
  const e = t.expect;
  const failures: string[] = [];
  const want = (what: string, expected: unknown, actual: unknown) => {
    if (expected !== undefined && expected !== actual) failures.push(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  };
  if (e.verdict !== got.verdict) failures.push(`verdict: expected ${e.verdict}${e.code ? ` ${e.code}` : ''}, got ${describe(got)}`);
  else {
    want('code', e.code, got.code);
    want('stage', e.stage, got.stage);
    want('rule', e.rule, got.rule);
  }
  if (e.wouldDeny !== undefined) {
    const codes = got.wouldDeny.map((w) => w.code);
    if (codes.join(',') !== e.wouldDeny.join(',')) failures.push(`wouldDeny: expected [${e.wouldDeny.join(', ')}], got [${codes.join(', ')}]`);
  }
  return { name: t.name, passed: failures.length === 0, failures, expected: e, got: { verdict: got.verdict, code: got.code, stage: got.stage, rule: got.rule, wouldDeny: got.wouldDeny, trace: got.trace } };
}

export async function runTestFile(policy: CompiledPolicy, file: string): Promise<TestResult[]> {
  const suite = readTestFile(file);
  const baseDir = dirname(resolve(file));
  const out: TestResult[] = [];
  for (const t of suite.tests) out.push(await runTestCase(policy, t, baseDir));
  return out;
}

