/**
 * spec.rateLimits: token buckets. Owned by src/ratelimit/. Each rule has a
 * rate (tokens added per second/minute/hour) and a burst (bucket size), and
 * a key naming whose bucket a request draws from.
 *
 * A rule with `scope: global` is a quota for the whole fleet of sidecars that
 * share the policy: `limit` requests per fixed `window`, counted from the
 * decision stream by the detector's quota aggregator (docs/quotas.md).
 */
import { idSchema, methodsSchema, pathPatternSchema } from './common.ts';

const perSchema = { type: 'string', enum: ['second', 'minute', 'hour'], default: 'second', description: 'Unit of rate. Default second.' } as const;

export const RATE_LIMIT_KEY_PARTS = ['identity', 'spiffeId', 'subject', 'clientId', 'ip', 'route', 'method'] as const;

export const QUOTA_WINDOWS = ['second', 'minute', 'hour', 'day'] as const;

const ruleSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'key'],
  // A local rule is a token bucket (rate); a global one a windowed quota (limit, window).
  if: { properties: { scope: { const: 'global' } }, required: ['scope'] },
  then: { required: ['limit', 'window'] },
  else: { required: ['rate'] },
  properties: {
    id: idSchema,
    scope: {
      type: 'string',
      enum: ['local', 'global'],
      default: 'local',
      description: 'local: a token bucket in each sidecar (rate, per, burst). global: a quota for all the sidecars that share this policy (its name), `limit` requests per `window`, counted by the detector from the decision stream; fails open when the count is lost (docs/quotas.md). Default local.',
    },
    key: {
      type: 'array',
      minItems: 1,
      uniqueItems: true,
      items: { type: 'string', anyOf: [{ enum: RATE_LIMIT_KEY_PARTS }, { pattern: '^claim:[A-Za-z0-9_.-]{1,64}$' }] },
      description: 'What a bucket belongs to, combined: identity (the authenticated subject), spiffeId, subject (JWT sub), clientId, ip (client IP), route (route template), method, claim:<name> (a string claim of the token, e.g. claim:tenant). A missing identity part or claim falls back to the client IP.',
    },
    limit: { type: 'integer', minimum: 1, description: 'Global rules: requests allowed per key in each `window`, across all sidecars. No default.' },
    window: { type: 'string', enum: QUOTA_WINDOWS, description: 'Global rules: the fixed window a quota counts in, aligned to UTC (a minute starts at second 0). No default.' },
    rate: { type: 'number', exclusiveMinimum: 0, description: 'Local rules: sustained requests per `per`.' },
    per: perSchema,
    burst: { type: 'integer', minimum: 1, description: 'Local rules: bucket size: requests allowed at once after a quiet period. Default: rate (rounded up).' },
    methods: { ...methodsSchema, default: ['*'] },
    paths: { type: 'array', items: pathPatternSchema, minItems: 1, default: ['/**'], description: 'Path templates the rule covers. Default ["/**"].' },
    audit: { type: 'boolean', default: false, description: 'Dry-run: an exhausted bucket (or quota) is recorded as would_deny, not enforced. Default false.' },
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
