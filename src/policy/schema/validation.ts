/**
 * spec.validation: request validation against the service's OpenAPI 3.0/3.1
 * document and/or inline JSON Schemas per route. Owned by src/validation/.
 * Schemas are compiled once when the policy loads (offline: the OpenAPI
 * document is a local file).
 */
import { idSchema, pathPatternSchema } from './common.ts';

const jsonSchema = { type: ['object', 'boolean'], description: 'A JSON Schema (draft 2020-12).' } as const;

const routeSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'method', 'path'],
  properties: {
    id: idSchema,
    method: { type: 'string', enum: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] },
    path: { ...pathPatternSchema, description: 'Path template; {name} captures a path parameter (OpenAPI style).' },
    params: { ...jsonSchema, description: 'Schema of the object of path parameters (values are coerced from strings).' },
    query: { ...jsonSchema, description: 'Schema of the object of query parameters (repeated keys become arrays; values are coerced).' },
    headers: { ...jsonSchema, description: 'Schema of the object of request headers (lowercase names; values are coerced).' },
    body: {
      type: 'object',
      additionalProperties: false,
      properties: {
        required: { type: 'boolean', default: false, description: 'A body must be sent. Default false.' },
        content: { type: 'object', additionalProperties: jsonSchema, description: 'Media type (or range, e.g. application/*+json) -> schema of the body. JSON types are parsed and checked; others are only allowed.' },
      },
    },
    audit: { type: 'boolean', default: false, description: 'Dry-run this route: violations are recorded as would_deny, not enforced. Default false.' },
  },
} as const;

export const validationSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'Absent: no schema validation (limits still apply).',
  properties: {
    openapi: {
      type: 'object',
      additionalProperties: false,
      required: ['file'],
      properties: {
        file: { type: 'string', minLength: 1, description: 'OpenAPI 3.0 or 3.1 document (YAML or JSON), relative to the policy file.' },
        basePath: { type: 'string', pattern: '^(/[^?#]*[^/?#])?$', default: '', description: 'Path prefix the service\'s operations are served under (e.g. /api/v1). Default "" (none).' },
        auditOperations: { type: 'array', items: { type: 'string', minLength: 1 }, default: [], description: 'operationIds to dry-run. Default [].' },
        audit: { type: 'boolean', default: false, description: 'Dry-run every operation of the document. Default false.' },
      },
    },
    routes: { type: 'array', default: [], items: routeSchema, description: 'Inline routes; checked before the OpenAPI operations. Default [].' },
    unknownRoutes: { type: 'string', enum: ['deny', 'allow', 'audit'], default: 'deny', description: 'A request no route/operation describes: deny (404 ROUTE_UNKNOWN), allow, or audit (allow, record would_deny). Default deny.' },
    responses: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'Check upstream responses against the operation\'s response schemas, in audit mode only (recorded, never blocked).',
      properties: {
        audit: { type: 'boolean', default: false, description: 'Check responses. Default false.' },
        undeclaredFields: { type: 'boolean', default: true, description: 'Report object fields the response schema does not declare (a service leaking data). Default true.' },
        maxBytes: { type: 'integer', minimum: 1, default: 1048576, description: 'Largest response body checked, bytes; larger ones are passed unchecked. Default 1048576.' },
      },
    },
  },
} as const;
