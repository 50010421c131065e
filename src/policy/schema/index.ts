/**
 * The policy document: one YAML or JSON file, the GitOps source of truth.
 * Each section's schema lives beside this file, owned by the stage that reads it.
 */
import { authenticationSchema } from './authentication.ts';
import { authorizationSchema } from './authorization.ts';
import { blocklistSchema } from './blocklist.ts';
import { headersSchema } from './headers.ts';
import { limitsSchema } from './limits.ts';
import { rateLimitsSchema } from './rate-limits.ts';
import { validationSchema } from './validation.ts';

export const POLICY_API_VERSION = 'palisade.dev/v1';

export const policySchema = {
  $id: 'https://palisade.dev/schemas/policy-v1.json',
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  properties: {
    apiVersion: { const: POLICY_API_VERSION, description: `Must be "${POLICY_API_VERSION}".` },
    kind: { const: 'Policy' },
    metadata: {
      type: 'object',
      additionalProperties: false,
      required: ['name'],
      properties: {
        name: { type: 'string', pattern: '^[a-z0-9][a-z0-9.-]{0,62}$', description: 'Policy name, recorded in every decision.' },
        version: { type: 'string', default: '0', description: 'Free-form version (a Git tag or date), recorded in every decision. Default "0".' },
        description: { type: 'string' },
        labels: { type: 'object', additionalProperties: { type: 'string' } },
      },
    },
    spec: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        mode: { type: 'string', enum: ['enforce', 'audit'], default: 'enforce', description: 'audit = dry-run the whole policy: every deny is recorded as would_deny and the request is allowed. Default enforce.' },
        auditStages: {
          type: 'array',
          uniqueItems: true,
          default: [],
          items: { type: 'string', enum: ['blocklist', 'authn', 'ratelimit', 'authz', 'validation'] },
          description: 'Stages to dry-run (record would_deny, allow the request). Default [].',
        },
        listener: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            allowPlaintext: { type: 'boolean', default: false, description: 'Open the plain-HTTP listener (PALISADE_PLAINTEXT_PORT). Requests on it have no mTLS identity. Default false.' },
          },
        },
        paths: {
          type: 'object',
          additionalProperties: false,
          default: {},
          description: 'How request paths are normalized before matching.',
          properties: {
            allowMatrixParams: { type: 'boolean', default: false, description: 'Accept ";" in path segments (some frameworks strip ";params", which would let /admin;x bypass a rule). Default false.' },
          },
        },
        headers: headersSchema,
        authentication: authenticationSchema,
        authorization: authorizationSchema,
        blocklist: blocklistSchema,
        rateLimits: rateLimitsSchema,
        limits: limitsSchema,
        validation: validationSchema,
      },
    },
  },
} as const;
