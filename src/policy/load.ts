/**
 * Reads, validates, freezes, hashes and compiles a policy document.
 * Used by the sidecar (initial load and hot reload) and by `palisade policy check`,
 * so the offline check is exactly what the sidecar would accept.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { detachBlockEntries } from '../blocklist/policy-blocklist.ts';
import { PalisadeError } from '../errors/codes.ts';
import { compileAmbiguityCheck } from '../http/ambiguity.ts';
import type { CompileContext, Stage, StageName } from '../pipeline/types.ts';
import type { Services } from '../pipeline/services.ts';
import { createAjv, describeAjvErrors } from '../util/ajv.ts';
import { canonicalJsonSha256 } from '../util/canonical-hash.ts';
import { deepFreeze } from '../util/freeze.ts';
import { findDuplicateKey, findJsonProblem, type JsonProblem } from '../util/json-check.ts';
import { lineColumn } from '../util/text-position.ts';
import { buildRouteTable, type CompiledPolicy } from './compiled.ts';
import type { PolicyDocument } from './document.ts';
import { policySchema } from './schema/index.ts';
import { UNVERIFIED, type PolicySignature } from './signature.ts';
import { STAGE_BUILDERS } from './stage-registry.ts';

const validate = createAjv().compile(policySchema);

/**
 * Parses a policy text, YAML or JSON (exactly one document).
 *
 * JSON is recognised by its content, not by the file name: the first
 * character after blanks (and a byte order mark) is '{', a policy being an
 * object. A ConfigMap key or a generated file is often named .yaml whatever it
 * holds, and a policy.json starts with '{' anyway. JSON goes to JSON.parse:
 * for the 4 MB benchmark policy, tens of ms instead of 2.4 s, and none of the
 * YAML parser's ~350 MiB of garbage, which the sidecar would carry into its
 * first full GC under load. The value is the one the YAML parser makes of the
 * same JSON (same hash), and duplicate keys are refused either way.
 *
 * Text that starts with '{' but that JSON.parse refuses goes to the YAML
 * parser, which accepted it before JSON had its own path (a YAML flow mapping,
 * a .json file with a trailing comma or a comment): such a policy must not
 * stop loading after an upgrade. If YAML refuses it too, the JSON error is
 * reported, as the text was meant to be JSON.
 */
export function parsePolicyText(text: string, source: string): unknown {
  // A byte order mark is skipped by the YAML parser but refused by JSON.parse.
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  if (/^[ \t\r\n]*\{/.test(body)) {
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch (err) {
      try {
        return parseYamlText(text, source);
      } catch {
        throw jsonSyntaxError(body, source, err as Error);
      }
    }
    // JSON.parse keeps the last of duplicate keys; the YAML path refuses them, and so must this one.
    const dup = findDuplicateKey(body);
    if (dup) throw new PalisadeError('POLICY_UNREADABLE', `${source}: invalid JSON at ${where(body, dup)}: ${dup.message}`);
    return value;
  }
  return parseYamlText(text, source);
}

/** Exactly one YAML document; duplicate keys refused. */
function parseYamlText(text: string, source: string): unknown {
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  if (!Array.isArray(docs)) throw new PalisadeError('POLICY_UNREADABLE', `${source}: not a YAML document`);
  if (docs.length !== 1) throw new PalisadeError('POLICY_UNREADABLE', `${source}: expected exactly one YAML document, found ${docs.length}`);
  const doc = docs[0]!;
  if (doc.errors.length > 0) {
    throw new PalisadeError('POLICY_UNREADABLE', `${source}: invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
  }
  return doc.toJS({ maxAliasCount: 100 });
}

/**
 * Line and column, and the JSON pointer of the member being read: in a
 * minified file everything is on line 1, and the pointer is what says where.
 */
function where(text: string, p: JsonProblem): string {
  const { line, column } = lineColumn(text, p.offset);
  return `line ${line}, column ${column}${p.pointer ? ` (${p.pointer})` : ''}`;
}

/**
 * JSON.parse's message has a position only for some errors, and may quote the
 * text; the checking scanner says where and what for all of them.
 */
function jsonSyntaxError(text: string, source: string, err: Error): PalisadeError {
  const p = findJsonProblem(text);
  // The scanner accepting what JSON.parse refused would be a scanner bug: V8's message is still an answer.
  const detail = p ? ` at ${where(text, p)}: ${p.message}` : `: ${err.message}`;
  return new PalisadeError('POLICY_UNREADABLE', `${source}: invalid JSON${detail}`, { cause: err });
}

/** Validates and fills defaults; returns the frozen document and its hash. `data` is left as it was. */
export function validatePolicy(data: unknown, source: string): { document: PolicyDocument; hash: string } {
  // ajv fills defaults in place: validate a private copy.
  return validateOwned(structuredClone(data), source);
}

/**
 * validatePolicy for a value nobody else holds (just parsed from the file's text): it is
 * validated, filled with defaults and frozen in place, with no copy (for the 100,000-entry
 * benchmark policy a copy is ~20 MB more heap at the load's peak). The hash is the SHA-256 of
 * the canonical JSON of the filled document, streamed (util/canonical-hash.ts): the same digest
 * as before, without the 6 MB string.
 */
function validateOwned(data: unknown, source: string, beforeFreeze?: (doc: PolicyDocument) => void): { document: PolicyDocument; hash: string } {
  if (!validate(data)) {
    const lines = describeAjvErrors(validate.errors, 'policy', data);
    throw new PalisadeError('POLICY_INVALID', `${source}: invalid policy:\n  - ${lines.join('\n  - ')}`);
  }
  const hash = canonicalJsonSha256(data);
  beforeFreeze?.(data as PolicyDocument);
  return { document: deepFreeze(data as PolicyDocument), hash };
}

/**
 * The block list's entries compiled while the policy loads, after its hash: the document keeps
 * the compiled form only (src/blocklist/policy-blocklist.ts), not 100,000 entry objects. Its
 * errors read as the stage's own did when it compiled them.
 */
function detachBlocklist(services: Services): (doc: PolicyDocument) => void {
  return (doc) => {
    try {
      detachBlockEntries(doc, services.now());
    } catch (err) {
      throw new PalisadeError('POLICY_INVALID', `policy.spec (blocklist stage): ${(err as Error).message}`, { cause: err });
    }
  };
}

/** The headers the policy reads a token from (tokenSource from: header): singletons too. */
function tokenHeaders(spec: PolicyDocument['spec']): string[] {
  const sources = [spec.authentication.jwt.tokenSource, spec.authentication.introspection?.tokenSource];
  return sources.flatMap((s) => (s?.from === 'header' && s.name !== undefined ? [s.name] : []));
}

export async function compilePolicy(document: PolicyDocument, hash: string, baseDir: string, services: Services, signature: PolicySignature = UNVERIFIED): Promise<CompiledPolicy> {
  const routes: { template: string; methods?: readonly string[] }[] = [];
  const cc: CompileContext = { baseDir, services, addRoutes: (r) => routes.push(...r) };
  const stages: Stage[] = [];
  for (const { name, build } of STAGE_BUILDERS) {
    let stage: Stage | null;
    try {
      stage = await build(document, cc);
    } catch (err) {
      if (err instanceof PalisadeError) throw err;
      throw new PalisadeError('POLICY_INVALID', `policy.spec (${name} stage): ${(err as Error).message}`, { cause: err });
    }
    if (stage) stages.push(stage);
  }
  // In the registry's order: the one place the pipeline order is written.
  const spec = document.spec;
  return Object.freeze({
    document,
    hash,
    name: document.metadata.name,
    version: document.metadata.version,
    signature,
    stages: Object.freeze(stages),
    auditAll: spec.mode === 'audit',
    auditStages: new Set<StageName>(spec.auditStages),
    allowPlaintext: spec.listener.allowPlaintext,
    allowMatrixParams: spec.paths.allowMatrixParams,
    checkHeaders: compileAmbiguityCheck(spec.headers, tokenHeaders(spec)),
    routeOf: buildRouteTable(routes),
  });
}

/**
 * Reads a policy file's bytes as text: the one place a policy file is read (the sidecar's
 * policy holder and the offline tools), so an unreadable file is always reported the same way.
 */
export async function readPolicyText(path: string): Promise<string> {
  return (await readPolicyBytes(path)).toString('utf8');
}

/** The policy file's exact bytes (what a signature covers); the same POLICY_UNREADABLE message as readPolicyText. */
export async function readPolicyBytes(path: string): Promise<Buffer> {
  try {
    return await readFile(resolve(path));
  } catch (err) {
    throw new PalisadeError('POLICY_UNREADABLE', `${path}: cannot read policy file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Parses, validates and compiles a policy text read from `path` (relative paths in it resolve against its directory). */
export function compilePolicyText(text: string, path: string, services: Services, signature: PolicySignature = UNVERIFIED): Promise<CompiledPolicy> {
  const { document, hash } = validateOwned(parsePolicyText(text, path), path, detachBlocklist(services));
  return compilePolicy(document, hash, dirname(resolve(path)), services, signature);
}

/** Reads and compiles a policy file; throws PalisadeError with an actionable message. */
export async function loadPolicyFile(path: string, services: Services): Promise<CompiledPolicy> {
  return compilePolicyText(await readPolicyText(path), path, services);
}
