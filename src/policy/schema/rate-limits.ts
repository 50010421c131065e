/**
 * spec.rateLimits: token buckets. Owned by src/ratelimit/. Each rule has a
 * rate (tokens added per second/minute/hour) and a burst (bucket size), and
 * a key naming whose bucket a request draws from.
 */
import { idSchema, methodsSchema, pathPatternSchema } from './common.ts';

const perSchema = { type: 'string', enum: ['second', 'minute', 'hour'], default: 'second', description: 'Unit of rate. Default second.' } as const;

export const RATE_LIMIT_KEY_PARTS = ['identity', 'spiffeId', 'subject', 'clientId', 'ip', 'route', 'method'] as const;

const ruleSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'key', 'rate'],
  properties: {
    id: idSchema,
    key: {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: { type: 'string', enum: RATE_LIMIT_KEY_PARTS },
      description: 'What a bucket belongs to, combined: identity (the authenticated subject), spiffeId, subject (JWT sub), clientId, ip (client IP), route (route template), method. A missing identity part falls back to the client IP.',
    },
    rate: { type: 'number', exclusiveMinimum: 0, description: 'Sustained requests per `per`.' },
    per: perSchema,
    burst: { type: 'integer', minimum: 1, description: 'Bucket size: requests allowed at once after a quiet period. Default: rate (rounded up).' },
    methods: { ...methodsSchema, default: ['*'] },
    paths: { type: 'array', items: pathPatternSchema, minItems: 1, default: ['/**'], description: 'Path templates the rule covers. Default ["/**"].' },
    audit: { type: 'boolean', default: false, description: 'Dry-run: an exhausted bucket is recorded as would_deny, not enforced. Default false.' },
  },
} as const;

export const rateLimitsSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    global: {
      type: 'object',
      additionalProperties: false,
      required: ['rate'],
      description: 'One bucket for the whole sidecar (protects the service and the sidecar itself). Default: none.',
      properties: {
        rate: { type: 'number', exclusiveMinimum: 0, description: 'Sustained requests per `per`.' },
        per: perSchema,
        burst: { type: 'integer', minimum: 1, description: 'Bucket size. Default: rate (rounded up).' },
        audit: { type: 'boolean', default: false, description: 'Dry-run the global limit. Default false.' },
      },
    },
    maxKeys: { type: 'integer', minimum: 100, default: 100000, description: 'Buckets held in memory per rule; idle buckets are evicted first. About 200 bytes each (with a 45-character key). Default 100000.' },
    rules: { type: 'array', default: [], items: ruleSchema, description: 'Every rule whose methods and paths match applies; the request needs a token from each. Default [].' },
  },
} as const;
