/**
 * Reads, validates, freezes, hashes and compiles a policy document.
 * Used by the sidecar (initial load and hot reload) and by `palisade policy check`,
 * so the offline check is exactly what the sidecar would accept.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { PalisadeError } from '../errors/codes.ts';
import { STAGE_BUILDERS, type CompileContext } from '../pipeline/stages.ts';
import { STAGE_ORDER, type Stage, type StageName } from '../pipeline/types.ts';
import type { Services } from '../sidecar/services.ts';
import { createAjv, describeAjvErrors } from '../util/ajv.ts';
import { canonicalJson, deepFreeze } from '../util/freeze.ts';
import { buildRouteTable, type CompiledPolicy } from './compiled.ts';
import type { PolicyDocument } from './document.ts';
import { policySchema } from './schema/index.ts';

const validate = createAjv().compile(policySchema);

/** Parses YAML or JSON text (JSON is YAML). Exactly one document. */
export function parsePolicyText(text: string, source: string): unknown {
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  if (!Array.isArray(docs)) throw new PalisadeError('POLICY_UNREADABLE', `${source}: not a YAML document`);
  if (docs.length !== 1) throw new PalisadeError('POLICY_UNREADABLE', `${source}: expected exactly one YAML document, found ${docs.length}`);
  const doc = docs[0]!;
  if (doc.errors.length > 0) {
    throw new PalisadeError('POLICY_UNREADABLE', `${source}: invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
  }
  return doc.toJS({ maxAliasCount: 100 });
}

/** Validates and fills defaults; returns the frozen document and its hash. */
export function validatePolicy(data: unknown, source: string): { document: PolicyDocument; hash: string } {
  // ajv fills defaults in place: validate a private copy.
  const copy: unknown = structuredClone(data);
  if (!validate(copy)) {
    const lines = describeAjvErrors(validate.errors, 'policy', copy);
    throw new PalisadeError('POLICY_INVALID', `${source}: invalid policy:\n  - ${lines.join('\n  - ')}`);
  }
  const hash = createHash('sha256').update(canonicalJson(copy)).digest('hex');
  return { document: deepFreeze(copy as PolicyDocument), hash };
}

export async function compilePolicy(document: PolicyDocument, hash: string, baseDir: string, services: Services): Promise<CompiledPolicy> {
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
  // A stage with runsAfter (a second check by the same stage) sits just after that stage.
  const rank = (s: Stage) => (s.runsAfter ? STAGE_ORDER.indexOf(s.runsAfter) + 0.5 : STAGE_ORDER.indexOf(s.name));
  stages.sort((a, b) => rank(a) - rank(b));
  const spec = document.spec;
  return Object.freeze({
    document,
    hash,
    name: document.metadata.name,
    version: document.metadata.version,
    stages: Object.freeze(stages),
    auditAll: spec.mode === 'audit',
    auditStages: new Set<StageName>(spec.auditStages),
    allowPlaintext: spec.listener.allowPlaintext,
    allowMatrixParams: spec.paths.allowMatrixParams,
    routeOf: buildRouteTable(routes),
  });
}

/** Reads and compiles a policy file; throws PalisadeError with an actionable message. */
export async function loadPolicyFile(path: string, services: Services): Promise<CompiledPolicy> {
  const abs = resolve(path);
  let text: string;
  try {
    text = await readFile(abs, 'utf8');
  } catch (err) {
    throw new PalisadeError('POLICY_UNREADABLE', `${path}: cannot read policy file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const { document, hash } = validatePolicy(parsePolicyText(text, path), path);
  return compilePolicy(document, hash, dirname(abs), services);
}
