/**
 * spec.validation compiled: the route table of operations (inline routes
 * first, then the OpenAPI document's), each with its validators. Runs at
 * policy load and reads only the local OpenAPI file.
 */
import { createHash } from 'node:crypto';
import type { ValidationSpec } from '../policy/document.ts';
import { compileOperation, createSchemaCompiler, type CompiledOperation, type SchemaCompiler } from './compile.ts';
import { closeObjectSchemas } from './openapi/close.ts';
import { convert30 } from './openapi/convert.ts';
import { readOpenApiFile } from './openapi/read.ts';
import { inlineOperations, openApiOperations, type OperationSpec } from './operations.ts';
import { RouteTable, TemplateError } from './route-table.ts';

export interface CompiledApi {
  readonly table: RouteTable<CompiledOperation>;
  readonly operations: readonly CompiledOperation[];
  readonly unknownRoutes: ValidationSpec['unknownRoutes'];
  readonly responses: ValidationSpec['responses'];
  /** Where the operations came from, for explain. */
  readonly sources: readonly string[];
}

export function compileApi(spec: ValidationSpec, baseDir: string, warn: (message: string) => void): CompiledApi {
  const table = new RouteTable<CompiledOperation>();
  const operations: CompiledOperation[] = [];
  const sources: string[] = [];
  const responseChecks = spec.responses.audit ? { undeclaredFields: spec.responses.undeclaredFields } : null;

  const add = (c: SchemaCompiler, ops: readonly OperationSpec[]) => {
    for (const op of ops) {
      const compiled = compileOperation(c, op, responseChecks);
      let added: boolean;
      try {
        added = table.add(op.method, op.template, compiled);
      } catch (err) {
        if (err instanceof TemplateError) throw new Error(`${op.where}: ${err.message}`);
        throw err;
      }
      // An inline route overrides the document's operation for the same method and path.
      if (!added && op.params === null) throw new Error(`${op.where}: ${op.method} ${op.template} is declared twice; remove one of the routes`);
      if (added) operations.push(compiled);
    }
  };

  if (spec.routes.length > 0) {
    const ids = new Set<string>();
    spec.routes.forEach((r, i) => {
      if (ids.has(r.id)) throw new Error(`spec.validation.routes[${i}]: route id "${r.id}" is used twice; route ids must be unique`);
      ids.add(r.id);
    });
    add(createSchemaCompiler(true, warn), inlineOperations(spec.routes));
    sources.push(`${spec.routes.length} inline route(s)`);
  }

  if (spec.openapi) {
    const field = 'spec.validation.openapi.file';
    const { version, raw, path } = readOpenApiFile(spec.openapi.file, baseDir, field);
    const doc = version === '3.0' ? convert30(raw) : raw;
    const docId = `urn:palisade:openapi:${createHash('sha256').update(path).digest('hex').slice(0, 16)}`;
    const c = createSchemaCompiler(false, (m) => warn(`${spec.openapi?.file}: ${m}`));
    // The whole document is registered once; operations reference its schemas by JSON pointer.
    c.body.addSchema(doc, docId, undefined, false);
    c.params.addSchema(doc, docId, undefined, false);
    if (responseChecks) c.responses.addSchema(responseChecks.undeclaredFields ? closeObjectSchemas(doc) : doc, docId, undefined, false);
    let ops: OperationSpec[];
    try {
      ops = openApiOperations(doc, docId, spec.openapi);
    } catch (err) {
      throw new Error(`${field} ("${spec.openapi.file}"): ${(err as Error).message}`);
    }
    const known = new Set(ops.map((o) => o.id));
    for (const id of spec.openapi.auditOperations) {
      if (!known.has(id)) throw new Error(`spec.validation.openapi.auditOperations: no operation "${id}" in ${spec.openapi.file}; known: ${[...known].slice(0, 10).join(', ')}${known.size > 10 ? ', ...' : ''}`);
    }
    add(c, ops);
    sources.push(`OpenAPI ${version} ${spec.openapi.file} (${ops.length} operations)`);
  }

  // HEAD is answered like GET unless the API declares HEAD itself.
  for (const op of operations) if (op.op.method === 'GET') table.add('HEAD', op.op.template, op);

  return { table, operations, unknownRoutes: spec.unknownRoutes, responses: spec.responses, sources };
}
