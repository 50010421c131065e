/**
 * Compiles operations into validators, once per policy load: one object
 * schema each for path parameters, query and headers (values coerced from
 * strings), one schema per body media type, and, for audit-mode response
 * checks, one per response status and media type.
 */
import type { Ajv2020 } from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv';
import { isForm, isJson } from '../limits/media-type.ts';
import { createAjv2020 } from '../util/ajv.ts';
import type { ContentSpec, OperationSpec, ParamLocation, ParamSpec } from './operations.ts';

export interface BodyValidator {
  /** json: parsed and checked; form: urlencoded, parsed and checked (coerced); none: allowed, not checked. */
  readonly kind: 'json' | 'form' | 'none';
  readonly validate: ValidateFunction | null;
}

export interface CompiledOperation {
  readonly op: OperationSpec;
  readonly path: ValidateFunction | null;
  readonly query: ValidateFunction | null;
  readonly headers: ValidateFunction | null;
  readonly body: { readonly required: boolean; readonly ranges: readonly string[]; readonly byRange: ReadonlyMap<string, BodyValidator> } | null;
  /** status key ("200", "2XX", "DEFAULT") -> media range -> validator (null: declared without schema). */
  readonly responses: ReadonlyMap<string, ReadonlyMap<string, ValidateFunction | null>> | null;
}

/** OpenAPI's format names, so documents that use them compile (int32/int64 ranges are checked). */
function addOpenApiFormats(ajv: Ajv2020): void {
  ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -2147483648 && n <= 2147483647 });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
  ajv.addFormat('float', { type: 'number', validate: () => true });
  ajv.addFormat('double', { type: 'number', validate: () => true });
  ajv.addFormat('byte', /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/);
  ajv.addFormat('binary', true);
  ajv.addFormat('password', true);
}

export interface SchemaCompiler {
  /** Body schemas (no coercion). */
  readonly body: Ajv2020;
  /** Path/query/header schemas (strings coerced to the declared types; scalars to one-item arrays). */
  readonly params: Ajv2020;
  /** Response schemas (documents registered closed when undeclared fields are reported). */
  readonly responses: Ajv2020;
}

/**
 * strict: inline policy schemas (a typo in a keyword is an error); OpenAPI
 * documents are compiled non-strict, because their vendor keywords (example,
 * discriminator, x-...) are legitimate. Unknown formats go to `warn`.
 */
export function createSchemaCompiler(strict: boolean, warn: (message: string) => void): SchemaCompiler {
  const logger = { log() {}, warn: (...a: unknown[]) => warn(a.map(String).join(' ')), error: (...a: unknown[]) => warn(a.map(String).join(' ')) };
  const make = (extra: object) => {
    const ajv = createAjv2020({ strict, useDefaults: false, logger, ...extra });
    addOpenApiFormats(ajv);
    return ajv;
  };
  return { body: make({}), params: make({ coerceTypes: 'array' }), responses: make({}) };
}

function paramObjectSchema(params: readonly ParamSpec[], loc: ParamLocation): object | null {
  const mine = params.filter((p) => p.in === loc);
  if (mine.length === 0) return null;
  const properties: Record<string, object> = {};
  for (const p of mine) properties[p.name] = p.schema ?? {};
  const required = mine.filter((p) => p.required).map((p) => p.name);
  return { type: 'object', properties, ...(required.length ? { required } : {}) };
}

function bodyKind(range: string): 'json' | 'form' | 'none' {
  const r = range.toLowerCase();
  if (isJson(r) || r.endsWith('/*+json')) return 'json';
  if (isForm(r)) return 'form';
  return 'none';
}

export class CompileError extends Error {}

function compileAt(ajv: Ajv2020, schema: object | boolean, where: string): ValidateFunction {
  try {
    return ajv.compile(schema);
  } catch (err) {
    throw new CompileError(`${where}: the schema does not compile: ${(err as Error).message}`);
  }
}

function compileContent(c: SchemaCompiler, content: readonly ContentSpec[], where: string): Map<string, BodyValidator> {
  const byRange = new Map<string, BodyValidator>();
  for (const { range, schema } of content) {
    const kind = bodyKind(range);
    const at = `${where}.content["${range}"]`;
    if (schema === null || kind === 'none') byRange.set(range, { kind: schema === null && kind !== 'none' ? kind : 'none', validate: null });
    else byRange.set(range, { kind, validate: compileAt(kind === 'form' ? c.params : c.body, schema, at) });
  }
  return byRange;
}

export function compileOperation(c: SchemaCompiler, op: OperationSpec, responseChecks: { readonly undeclaredFields: boolean } | null): CompiledOperation {
  let path: ValidateFunction | null = null;
  let query: ValidateFunction | null = null;
  let headers: ValidateFunction | null = null;
  if (op.params) {
    const ps = paramObjectSchema(op.params, 'path');
    const qs = paramObjectSchema(op.params, 'query');
    const hs = paramObjectSchema(op.params, 'header');
    if (ps) path = compileAt(c.params, ps, `${op.where}.parameters (path)`);
    if (qs) query = compileAt(c.params, qs, `${op.where}.parameters (query)`);
    if (hs) headers = compileAt(c.params, hs, `${op.where}.parameters (header)`);
  } else if (op.inline) {
    if (op.inline.path !== undefined) path = compileAt(c.params, op.inline.path as object, `${op.where}.params`);
    if (op.inline.query !== undefined) query = compileAt(c.params, op.inline.query as object, `${op.where}.query`);
    if (op.inline.headers !== undefined) headers = compileAt(c.params, op.inline.headers as object, `${op.where}.headers`);
  }
  const body = op.body ? { required: op.body.required, ranges: op.body.content.map((x) => x.range), byRange: compileContent(c, op.body.content, `${op.where}.${op.params ? 'requestBody' : 'body'}`) } : null;
  let responses: Map<string, Map<string, ValidateFunction | null>> | null = null;
  if (responseChecks && op.responses) {
    responses = new Map();
    for (const [status, content] of op.responses) {
      const m = new Map<string, ValidateFunction | null>();
      for (const { range, schema } of content) {
        const ref = (schema as { $ref: string } | null)?.$ref;
        // Closing the top level too: a schema that is also an allOf branch elsewhere is left open in the document.
        const wrapped = responseChecks.undeclaredFields ? { $ref: ref, unevaluatedProperties: false } : { $ref: ref };
        m.set(range, ref === undefined || bodyKind(range) !== 'json' ? null : compileAt(c.responses, wrapped, `${op.where}.responses["${status}"].content["${range}"]`));
      }
      responses.set(status, m);
    }
  }
  return { op, path, query, headers, body, responses };
}
