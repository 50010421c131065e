/**
 * The operations a policy describes, from either source, in one shape:
 * OpenAPI 3.0/3.1 operations (schemas referenced by JSON pointer into the
 * registered document) and inline routes from spec.validation.routes.
 * Nothing is compiled here; compile.ts turns these into validators.
 */
import type { JsonSchemaSpec, ValidationRouteSpec } from '../policy/document.ts';
import { escapeToken, OpenApiError, resolvePointer } from './openapi/read.ts';

export type ParamLocation = 'path' | 'query' | 'header';

export interface ParamSpec {
  readonly name: string;
  readonly in: ParamLocation;
  readonly required: boolean;
  /** An ajv schema (usually a $ref into the document), or null when the parameter has none. */
  readonly schema: object | null;
  readonly style: string;
  readonly explode: boolean;
  /** The schema's type, looked up through $refs; drives array/object splitting. */
  readonly type: string | null;
}

export interface ContentSpec {
  /** Media type or range, as written. */
  readonly range: string;
  readonly schema: object | boolean | null;
}

export interface OperationSpec {
  readonly id: string;
  readonly method: string;
  readonly template: string;
  readonly audit: boolean;
  /** Where it came from, for messages: `openapi paths["/x"].post` or `spec.validation.routes[2]`. */
  readonly where: string;
  /** OpenAPI: the declared parameters. Inline: null (object schemas below instead). */
  readonly params: readonly ParamSpec[] | null;
  readonly inline: { readonly path?: JsonSchemaSpec; readonly query?: JsonSchemaSpec; readonly headers?: JsonSchemaSpec } | null;
  readonly body: { readonly required: boolean; readonly content: readonly ContentSpec[] } | null;
  /** status ("200", "2XX", "default") -> content; null when none are declared. */
  readonly responses: ReadonlyMap<string, readonly ContentSpec[]> | null;
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch'] as const;

type Obj = Record<string, unknown>;

function isObj(x: unknown): x is Obj {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

/** Follows $ref chains; returns the object and the pointer (without "#") where it lives. */
function deref(doc: Obj, node: unknown, pointer: string): { node: unknown; pointer: string } {
  for (let hops = 0; isObj(node) && typeof node['$ref'] === 'string'; hops++) {
    if (hops > 20) throw new OpenApiError(`$ref chain at ${pointer} is too long (a cycle?)`);
    const ref = node['$ref'] as string;
    node = resolvePointer(doc, ref);
    pointer = ref.slice(1);
  }
  return { node, pointer };
}

function schemaTypeAt(doc: Obj, schema: unknown, pointer: string): string | null {
  const { node } = deref(doc, schema, pointer);
  if (!isObj(node)) return null;
  const t = node['type'];
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) return (t.find((x) => x !== 'null') as string | undefined) ?? null;
  if (isObj(node['properties'])) return 'object';
  if (node['items'] !== undefined) return 'array';
  return null;
}

function contentOf(doc: Obj, docId: string, content: unknown, pointer: string): ContentSpec[] {
  if (!isObj(content)) return [];
  return Object.entries(content).map(([range, media]) => {
    const hasSchema = isObj(media) && media['schema'] !== undefined;
    return { range, schema: hasSchema ? { $ref: `${docId}#${pointer}/${escapeToken(range)}/schema` } : null };
  });
}

/** Every operation of an OpenAPI document registered in ajv under `docId`. */
export function openApiOperations(doc: Obj, docId: string, opts: { basePath: string; audit: boolean; auditOperations: readonly string[] }): OperationSpec[] {
  const paths = isObj(doc['paths']) ? doc['paths'] : {};
  const ops: OperationSpec[] = [];
  const ids = new Set<string>();
  for (const [path, rawItem] of Object.entries(paths)) {
    const itemPtr = `/paths/${escapeToken(path)}`;
    const { node: item, pointer: itemPointer } = deref(doc, rawItem, itemPtr);
    if (!isObj(item)) continue;
    for (const method of METHODS) {
      const op = item[method];
      if (!isObj(op)) continue;
      const opPointer = `${itemPointer}/${method}`;
      const where = `openapi paths["${path}"].${method}`;
      const byKey = new Map<string, ParamSpec>();
      const addParams = (list: unknown, listPointer: string) => {
        if (!Array.isArray(list)) return;
        list.forEach((raw, i) => {
          const { node: p, pointer } = deref(doc, raw, `${listPointer}/${i}`);
          if (!isObj(p) || typeof p['name'] !== 'string' || typeof p['in'] !== 'string') throw new OpenApiError(`${where}: parameter ${i} has no name or in`);
          const loc = p['in'];
          if (loc === 'cookie') return; // cookies are never parsed by the sidecar
          if (loc !== 'path' && loc !== 'query' && loc !== 'header') throw new OpenApiError(`${where}: parameter "${p['name']}" has unknown location "${String(loc)}"`);
          const name = loc === 'header' ? (p['name'] as string).toLowerCase() : (p['name'] as string);
          const hasSchema = p['schema'] !== undefined;
          const style = typeof p['style'] === 'string' ? p['style'] : loc === 'query' ? 'form' : 'simple';
          byKey.set(`${loc}\n${name}`, {
            name,
            in: loc,
            required: loc === 'path' ? true : p['required'] === true,
            schema: hasSchema ? { $ref: `${docId}#${pointer}/schema` } : null,
            style,
            explode: typeof p['explode'] === 'boolean' ? p['explode'] : style === 'form',
            type: hasSchema ? schemaTypeAt(doc, p['schema'], `${pointer}/schema`) : null,
          });
        });
      };
      addParams(item['parameters'], `${itemPointer}/parameters`);
      addParams(op['parameters'], `${opPointer}/parameters`);
      let body: OperationSpec['body'] = null;
      if (op['requestBody'] !== undefined) {
        const { node: rb, pointer } = deref(doc, op['requestBody'], `${opPointer}/requestBody`);
        if (isObj(rb)) body = { required: rb['required'] === true, content: contentOf(doc, docId, rb['content'], `${pointer}/content`) };
      }
      let responses: Map<string, ContentSpec[]> | null = null;
      if (isObj(op['responses'])) {
        responses = new Map();
        for (const [status, raw] of Object.entries(op['responses'])) {
          const { node: r, pointer } = deref(doc, raw, `${opPointer}/responses/${escapeToken(status)}`);
          responses.set(status.toUpperCase(), isObj(r) ? contentOf(doc, docId, r['content'], `${pointer}/content`) : []);
        }
      }
      const id = typeof op['operationId'] === 'string' ? op['operationId'] : `${method.toUpperCase()} ${path}`;
      if (ids.has(id)) throw new OpenApiError(`${where}: operationId "${id}" is used twice; operationIds must be unique`);
      ids.add(id);
      const template = opts.basePath + (path === '/' && opts.basePath ? '' : path);
      for (const p of byKey.values()) {
        if (p.in === 'path' && !template.includes(`{${p.name}}`)) throw new OpenApiError(`${where}: path parameter "${p.name}" does not appear in the path; fix the name or the path`);
      }
      ops.push({
        id,
        method: method.toUpperCase(),
        template: template || '/',
        audit: opts.audit || opts.auditOperations.includes(id),
        where,
        params: [...byKey.values()],
        inline: null,
        body,
        responses,
      });
    }
  }
  return ops;
}

/** Inline routes of spec.validation.routes. */
export function inlineOperations(routes: readonly ValidationRouteSpec[]): OperationSpec[] {
  return routes.map((r, i) => ({
    id: r.id,
    method: r.method,
    template: r.path,
    audit: r.audit,
    where: `spec.validation.routes[${i}]`,
    params: null,
    inline: { ...(r.params !== undefined ? { path: r.params } : {}), ...(r.query !== undefined ? { query: r.query } : {}), ...(r.headers !== undefined ? { headers: r.headers } : {}) },
    body: r.body ? { required: r.body.required, content: Object.entries(r.body.content ?? {}).map(([range, schema]) => ({ range, schema: schema as object | boolean })) } : null,
    responses: null,
  }));
}
