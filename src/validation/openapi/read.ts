/**
 * Reads an OpenAPI 3.0 or 3.1 document from a local file (YAML or JSON) at
 * policy load. No network: a remote $ref is refused with a message saying
 * to bundle the document first.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';

export interface OpenApiDocument {
  readonly version: '3.0' | '3.1';
  /** The parsed document (3.0 schemas converted to JSON Schema 2020-12, see convert.ts). */
  readonly doc: Record<string, unknown>;
  readonly file: string;
}

export class OpenApiError extends Error {}

export function readOpenApiFile(file: string, baseDir: string, field: string): { version: '3.0' | '3.1'; raw: Record<string, unknown>; path: string } {
  const path = resolve(baseDir, file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new OpenApiError(`${field} ("${file}"): cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; the path is relative to the policy file`);
  }
  let raw: unknown;
  try {
    raw = parse(text, { maxAliasCount: 1000 });
  } catch (err) {
    throw new OpenApiError(`${field} ("${file}"): not valid YAML/JSON: ${(err as Error).message}`);
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new OpenApiError(`${field} ("${file}"): not an OpenAPI document (expected an object with "openapi" and "paths")`);
  const o = raw as Record<string, unknown>;
  const v = typeof o['openapi'] === 'string' ? (o['openapi'] as string) : typeof o['swagger'] === 'string' ? `swagger ${String(o['swagger'])}` : '(missing)';
  const version = /^3\.0\.\d+/.test(v) ? '3.0' : /^3\.1\.\d+/.test(v) ? '3.1' : null;
  if (!version) throw new OpenApiError(`${field} ("${file}"): openapi version ${JSON.stringify(v)} is not supported; use an OpenAPI 3.0.x or 3.1.x document (convert Swagger 2.0 first)`);
  if (o['paths'] !== undefined && (typeof o['paths'] !== 'object' || o['paths'] === null)) throw new OpenApiError(`${field} ("${file}"): "paths" must be an object`);
  return { version, raw: o, path };
}

/** Resolves a local JSON pointer ("#/components/schemas/Order") in `doc`. */
export function resolvePointer(doc: unknown, ref: string): unknown {
  if (!ref.startsWith('#')) throw new OpenApiError(`$ref "${ref}" points outside the document; bundle it into one file first (e.g. redocly bundle)`);
  if (ref === '#') return doc;
  if (!ref.startsWith('#/')) throw new OpenApiError(`$ref "${ref}" is not a JSON pointer`);
  let cur: unknown = doc;
  for (const raw of ref.slice(2).split('/')) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, key)) throw new OpenApiError(`$ref "${ref}" does not resolve (no "${key}")`);
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

/** JSON pointer escaping of one reference token. */
export function escapeToken(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}
