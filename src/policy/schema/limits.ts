/**
 * spec.limits: size and shape limits that protect the service. Owned by
 * src/limits/ (checked in the validation stage, before anything is
 * forwarded). Every limit has a safe default, so a policy without this
 * section is still protected.
 */
import { idSchema, methodsSchema, pathPatternSchema } from './common.ts';

const mediaTypeSchema = {
  type: 'string',
  pattern: '^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+*-]+$',
  description: 'A media type without parameters: "application/json", "application/*+json" (any +json type), "text/*", or "*/*".',
} as const;

const perRouteFields = {
  maxBodyBytes: { type: 'integer', minimum: 0, description: 'Largest request body, bytes; a streamed body is cut off at this many bytes (413).' },
  maxJsonDepth: { type: 'integer', minimum: 1, description: 'Deepest nesting of arrays/objects in a JSON body.' },
  maxJsonKeys: { type: 'integer', minimum: 1, description: 'Most object keys in a JSON body, counted over the whole document.' },
  contentTypes: { type: 'array', items: mediaTypeSchema, uniqueItems: true, description: 'Media types a request body may have (415 otherwise). Empty = any.' },
} as const;

export const limitsSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    maxUrlLength: { type: 'integer', minimum: 1, default: 8192, description: 'Longest request target (path and query as forwarded), bytes (414 beyond). Default 8192.' },
    maxHeaderCount: { type: 'integer', minimum: 1, default: 100, description: 'Most distinct request header fields (431 beyond). Default 100.' },
    maxHeaderBytes: { type: 'integer', minimum: 1, default: 16384, description: 'Total bytes of header names and values (431 beyond). Node also refuses more than 16 KiB before any stage. Default 16384.' },
    maxBodyBytes: { ...perRouteFields.maxBodyBytes, default: 1048576, description: `${perRouteFields.maxBodyBytes.description} Default 1048576 (1 MiB).` },
    maxJsonDepth: { ...perRouteFields.maxJsonDepth, default: 64, description: `${perRouteFields.maxJsonDepth.description} Default 64.` },
    maxJsonKeys: { ...perRouteFields.maxJsonKeys, default: 10000, description: `${perRouteFields.maxJsonKeys.description} Default 10000.` },
    contentTypes: { ...perRouteFields.contentTypes, default: [], description: `${perRouteFields.contentTypes.description} Default [].` },
    audit: { type: 'boolean', default: false, description: 'Dry-run every limit: breaches are recorded as would_deny, not enforced. Default false.' },
    routes: {
      type: 'array',
      default: [],
      description: 'Per-route overrides; the first rule matching the method and path applies. Default [].',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'paths'],
        properties: {
          id: idSchema,
          methods: { ...methodsSchema, default: ['*'] },
          paths: { type: 'array', items: pathPatternSchema, minItems: 1 },
          ...perRouteFields,
          audit: { type: 'boolean', default: false, description: 'Dry-run this rule\'s limits. Default false.' },
        },
      },
    },
  },
} as const;
