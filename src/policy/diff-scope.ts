/**
 * What `policy diff` cannot check from recorded decisions: the changes
 * between two policies that touch a check whose inputs are never recorded
 * (tokens, bodies, query strings, headers, rate-limit bucket state, the raw
 * request target and header lines). Each is named by stage and rule, with the reason, so a
 * diff never reports "no change" for something it did not replay.
 *
 * Everything else a policy says (block list entries, authentication
 * requirements and mTLS rules, authorization, the API's routes and path
 * parameters, audit modes) is replayed (replay.ts).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { StageName } from '../pipeline/types.ts';
import { canonicalJson } from '../util/freeze.ts';
import { compileApi } from '../validation/api.ts';
import type { OperationSpec } from '../validation/operations.ts';
import type { CompiledPolicy } from './compiled.ts';
import type { PolicyDocument } from './document.ts';

export interface Unreplayed {
  readonly stage: StageName | 'request';
  /** The rule, issuer, operation or setting that changed. */
  readonly what: string;
  /** Why the recorded events cannot show its effect. */
  readonly why: string;
}

export interface PolicySide {
  readonly policy: CompiledPolicy;
  /** Directory of the policy file: relative paths in it (the OpenAPI file) resolve against it. */
  readonly baseDir: string;
}

const WHY_TOKEN = 'tokens are never recorded, so token verification cannot be replayed';
const WHY_RATE = 'rate-limit bucket state depends on the timing of all traffic at each replica; recorded rate-limit outcomes are kept as they were';
const WHY_REQUEST = 'bodies, query strings and headers are never recorded; recorded outcomes of these checks are kept as they were';

const same = (a: unknown, b: unknown) => canonicalJson(a ?? null) === canonicalJson(b ?? null);

/** added / removed / changed, by id. */
function byId<T>(stage: Unreplayed['stage'], kind: string, a: readonly T[], b: readonly T[], id: (x: T) => string, why: string, out: Unreplayed[]): void {
  const before = new Map(a.map((x) => [id(x), x]));
  const after = new Map(b.map((x) => [id(x), x]));
  for (const [k, x] of before) {
    const y = after.get(k);
    if (y === undefined) out.push({ stage, what: `${kind} "${k}" removed`, why });
    else if (!same(x, y)) out.push({ stage, what: `${kind} "${k}" changed (${changedKeys(x, y).join(', ')})`, why });
  }
  for (const k of after.keys()) if (!before.has(k)) out.push({ stage, what: `${kind} "${k}" added`, why });
}

function changedKeys(a: unknown, b: unknown): string[] {
  const x = (a ?? {}) as Record<string, unknown>;
  const y = (b ?? {}) as Record<string, unknown>;
  return [...new Set([...Object.keys(x), ...Object.keys(y)])].filter((k) => !same(x[k], y[k])).sort();
}

function authentication(a: PolicyDocument, b: PolicyDocument, out: Unreplayed[]): void {
  const x = a.spec.authentication;
  const y = b.spec.authentication;
  byId('authn', 'jwt issuer', x.jwt.issuers, y.jwt.issuers, (i) => i.issuer, WHY_TOKEN, out);
  if (!same(x.jwt.tokenSource, y.jwt.tokenSource)) out.push({ stage: 'authn', what: 'jwt.tokenSource changed', why: WHY_TOKEN });
  if (!same(x.introspection, y.introspection)) out.push({ stage: 'authn', what: `introspection ${!x.introspection ? 'added' : !y.introspection ? 'removed' : `changed (${changedKeys(x.introspection, y.introspection).join(', ')})`}`, why: WHY_TOKEN });
}

function rateLimits(a: PolicyDocument, b: PolicyDocument, out: Unreplayed[]): void {
  const x = a.spec.rateLimits;
  const y = b.spec.rateLimits;
  byId('ratelimit', 'rate limit', x.rules, y.rules, (r) => r.id, WHY_RATE, out);
  if (!same(x.global, y.global)) out.push({ stage: 'ratelimit', what: `global rate limit ${!x.global ? 'added' : !y.global ? 'removed' : 'changed'}`, why: WHY_RATE });
  if (x.maxKeys !== y.maxKeys) out.push({ stage: 'ratelimit', what: `maxKeys ${x.maxKeys} -> ${y.maxKeys}`, why: WHY_RATE });
}

function limits(a: PolicyDocument, b: PolicyDocument, out: Unreplayed[]): void {
  const { routes: ra, ...x } = a.spec.limits;
  const { routes: rb, ...y } = b.spec.limits;
  for (const k of changedKeys(x, y)) out.push({ stage: 'validation', what: `limits.${k} changed`, why: WHY_REQUEST });
  byId('validation', 'limits route', ra, rb, (r) => r.id, WHY_REQUEST, out);
}

/** The parts of an operation the recording cannot show: all but the route and the path parameters. */
function unrecordedParts(op: OperationSpec): unknown {
  return {
    audit: op.audit,
    params: (op.params ?? []).filter((p) => p.in !== 'path'),
    query: op.inline?.query ?? null,
    headers: op.inline?.headers ?? null,
    body: op.body,
  };
}

function operations(side: PolicySide): Map<string, OperationSpec> {
  const spec = side.policy.document.spec.validation;
  if (!spec) return new Map();
  const api = compileApi(spec, side.baseDir, () => {});
  return new Map(api.operations.map((o) => [`${o.op.method} ${o.op.template}`, o.op]));
}

/** The OpenAPI document's shared schemas: an operation's body may be a $ref into them. */
function components(side: PolicySide): unknown {
  const file = side.policy.document.spec.validation?.openapi?.file;
  if (!file) return null;
  const doc = parseYaml(readFileSync(resolve(side.baseDir, file), 'utf8')) as Record<string, unknown> | null;
  return doc?.['components'] ?? null;
}

function validation(a: PolicySide, b: PolicySide, out: Unreplayed[]): void {
  const x = operations(a);
  const y = operations(b);
  for (const [k, op] of x) {
    const other = y.get(k);
    // Routes added or removed are replayed (ROUTE_UNKNOWN); what an operation checks beyond its path is not.
    if (other && !same(unrecordedParts(op), unrecordedParts(other))) {
      out.push({ stage: 'validation', what: `operation "${op.id}" (${k}) changed (${changedKeys(unrecordedParts(op), unrecordedParts(other)).join(', ')})`, why: WHY_REQUEST });
    }
  }
  for (const [k, op] of y) {
    const before = x.get(k);
    if (!before && (op.body !== null || (op.params ?? []).some((p) => p.in !== 'path') || op.inline?.query || op.inline?.headers)) {
      out.push({ stage: 'validation', what: `operation "${op.id}" (${k}) added, with checks of the query, headers or body`, why: WHY_REQUEST });
    }
  }
  if (!same(components(a), components(b))) out.push({ stage: 'validation', what: 'OpenAPI components (shared schemas) changed', why: WHY_REQUEST });
}

export function unreplayedChanges(a: PolicySide, b: PolicySide): Unreplayed[] {
  const out: Unreplayed[] = [];
  const x = a.policy.document;
  const y = b.policy.document;
  if (x.spec.paths.allowMatrixParams !== y.spec.paths.allowMatrixParams) {
    out.push({ stage: 'request', what: `paths.allowMatrixParams ${x.spec.paths.allowMatrixParams} -> ${y.spec.paths.allowMatrixParams}`, why: 'recorded paths are already normalized; the raw request target is not recorded' });
  }
  // spec.headers judges raw header lines, which are not recorded; requests it refused are skipped by the replay.
  for (const k of changedKeys(x.spec.headers, y.spec.headers)) out.push({ stage: 'request', what: `headers.${k} changed`, why: 'the raw header lines are not recorded, and requests refused before any stage are not replayed' });
  authentication(x, y, out);
  rateLimits(x, y, out);
  limits(x, y, out);
  validation(a, b, out);
  return out;
}
