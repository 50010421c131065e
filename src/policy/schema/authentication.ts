/**
 * spec.authentication: which credentials each route requires, and how each
 * kind is checked (mTLS peer, JWT against an issuer's JWKS, OAuth2 token
 * introspection). Owned by the authn stage (src/authn/). Checks that need more
 * than a JSON Schema (token source names, algorithm allow-lists, secret
 * references, URLs) are done by src/authn/config.ts with messages that name
 * the field, the value and the fix.
 */
import { idSchema, methodsSchema, pathPatternSchema } from './common.ts';

/** Asymmetric JWS algorithms accepted with a JWKS. HMAC (HS*) and "none" never are. */
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;

const AUTHN_METHODS = ['mtls', 'jwt', 'introspection'] as const;

const methodListSchema = {
  type: 'array',
  items: { type: 'string', enum: AUTHN_METHODS },
  minItems: 1,
  uniqueItems: true,
} as const;

/** "none" | "mtls" | "jwt" | "introspection" | { anyOf: [...] } | { allOf: [...] }; the string form is checked by src/authn/config.ts. */
const requireSchema = {
  type: ['string', 'object'],
  description:
    'Credentials the route requires: "none" (public; the mTLS identity is still attached when present), "mtls", "jwt", "introspection", { anyOf: [methods] } (one is enough, tried in order) or { allOf: [methods] } (all must pass).',
  additionalProperties: false,
  minProperties: 1,
  maxProperties: 1,
  properties: {
    anyOf: { ...methodListSchema, description: 'Any one of these credentials is enough; tried in the listed order.' },
    allOf: { ...methodListSchema, description: 'Every one of these credentials must be present and valid.' },
  },
} as const;

const tokenSourceSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  description: 'Where the token is read: the Authorization Bearer header (default), a named header, or a named cookie.',
  properties: {
    from: { type: 'string', enum: ['bearer', 'header', 'cookie'], default: 'bearer', description: 'bearer = "Authorization: Bearer <token>"; header = the raw value of header `name` ("Bearer " prefix optional); cookie = the value of cookie `name`. Default bearer.' },
    name: { type: 'string', minLength: 1, maxLength: 128, description: 'Header name (from: header) or cookie name (from: cookie). Not used with from: bearer.' },
  },
} as const;

const claimMappingSchema = (scopes: readonly string[]) =>
  ({
    type: 'object',
    additionalProperties: false,
    default: {},
    description: 'Which claims hold scopes and groups. A claim may be a space-separated string or an array of strings; dots walk into nested objects (realm_access.roles).',
    properties: {
      scopes: { type: 'array', items: { type: 'string', minLength: 1 }, default: [...scopes], description: `Claims whose values are the identity's scopes (union). Default ${JSON.stringify(scopes)}.` },
      groups: { type: 'array', items: { type: 'string', minLength: 1 }, default: ['groups'], description: 'Claims whose values are the identity\'s groups (union). Default ["groups"].' },
    },
  }) as const;

const issuerSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['issuer', 'jwksUri', 'audiences'],
  properties: {
    issuer: { type: 'string', minLength: 1, description: 'Exact value of the iss claim this entry verifies (usually https://idp.example.com/realms/x).' },
    jwksUri: { type: 'string', minLength: 1, description: 'URL of the issuer\'s JSON Web Key Set. https, or http on a loopback address; other http only with jwks.allowHttp.' },
    audiences: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1, uniqueItems: true, description: 'The token\'s aud must contain at least one of these.' },
    algorithms: {
      type: 'array',
      items: { type: 'string', minLength: 1 },
      minItems: 1,
      uniqueItems: true,
      default: [...ASYMMETRIC_ALGORITHMS],
      description: `Accepted signing algorithms (allow-list). Only asymmetric ones: ${ASYMMETRIC_ALGORITHMS.join(', ')}. "none" and HS256/384/512 are refused. Default: all of those.`,
    },
    clockSkewSeconds: { type: 'integer', minimum: 0, maximum: 600, default: 30, description: 'Leeway for exp, nbf and iat, seconds. Default 30.' },
    claims: claimMappingSchema(['scope', 'scp']),
    jwks: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        cacheMaxAgeSeconds: {
          type: 'integer',
          minimum: 1,
          maximum: 86400,
          default: 300,
          description: 'Longest use of a fetched key set, seconds: the issuer\'s own lifetime (Cache-Control max-age less Age, else Expires) is honoured up to this, and this applies when the response gives none. Past it a request waits for the refetch, so a key removed from the JWKS stops verifying (cached verdicts included) within the lifetime; while the JWKS host is down the known keys stay in use. Default 300.',
        },
        cacheMinAgeSeconds: {
          type: 'integer',
          minimum: 1,
          maximum: 86400,
          default: 5,
          description: 'Shortest use of a fetched key set, seconds: an issuer\'s shorter max-age (or no-cache, no-store, max-age=0) is raised to this, so each sidecar fetches the JWKS at most once per this many seconds routinely. At most cacheMaxAgeSeconds. Default 5.',
        },
        cooldownSeconds: {
          type: 'integer',
          minimum: 0,
          maximum: 3600,
          default: 30,
          description: 'After a refetch for an unknown kid that did not find it (or failed), no other unknown-kid refetch for this many seconds, and a failing JWKS host is retried at most this often: a flood of forged kids costs the host at most one fetch per cooldown. A newly published kid is fetched at once, even right after a routine fetch. Default 30.',
        },
        timeoutMs: { type: 'integer', minimum: 1, maximum: 60000, default: 2000, description: 'Timeout of one JWKS fetch, milliseconds. Default 2000.' },
        allowHttp: { type: 'boolean', default: false, description: 'Allow an http:// jwksUri on a non-loopback host (keys could be swapped in transit). Default false.' },
      },
    },
  },
} as const;

const introspectionSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['endpoint', 'clientId', 'clientSecret'],
  description: 'OAuth2 token introspection (RFC 7662) for opaque tokens.',
  properties: {
    endpoint: { type: 'string', minLength: 1, description: 'Introspection endpoint URL. https, or http on a loopback address; other http only with allowHttp.' },
    clientId: { type: 'string', minLength: 1, description: 'Client id the sidecar authenticates with.' },
    clientSecret: {
      type: ['object', 'string'],
      description: 'Where the client secret is read, at call time (so a rotated secret is picked up): { file: /path } or { env: VARIABLE }. Never the secret itself: the policy lives in Git.',
      additionalProperties: false,
      minProperties: 1,
      maxProperties: 1,
      properties: {
        file: { type: 'string', minLength: 1, description: 'File holding the secret (trailing newline ignored); relative paths resolve against the policy file.' },
        env: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'Environment variable holding the secret.' },
      },
    },
    authMethod: { type: 'string', enum: ['client_secret_basic', 'client_secret_post'], default: 'client_secret_basic', description: 'How the client authenticates (RFC 6749 2.3.1): HTTP Basic, or client_id/client_secret in the form body. Default client_secret_basic.' },
    timeoutMs: { type: 'integer', minimum: 1, maximum: 60000, default: 2000, description: 'Timeout of one introspection call, milliseconds; exceeded -> 503 AUTHN_INTROSPECTION_UNAVAILABLE. Default 2000.' },
    cacheMaxSeconds: { type: 'integer', minimum: 0, maximum: 3600, default: 30, description: 'An active result is reused at most this long (and never past the token\'s exp); a revoked token works at most this long. 0 disables. Default 30.' },
    inactiveCacheSeconds: { type: 'integer', minimum: 0, maximum: 300, default: 5, description: 'An inactive result is reused this long, so a replayed dead token does not cost a call each time. Default 5.' },
    cacheMaxEntries: { type: 'integer', minimum: 1, maximum: 1000000, default: 10000, description: 'Cached results at most (least recently used evicted). Default 10000.' },
    audiences: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1, uniqueItems: true, description: 'If set, the response\'s aud must contain one of these. Default: not checked.' },
    clockSkewSeconds: { type: 'integer', minimum: 0, maximum: 600, default: 30, description: 'Leeway when comparing the response\'s exp with the clock, seconds. Default 30.' },
    tokenSource: tokenSourceSchema,
    claims: claimMappingSchema(['scope']),
    allowHttp: { type: 'boolean', default: false, description: 'Allow an http:// endpoint on a non-loopback host (the client secret and tokens would travel in clear). Default false.' },
  },
} as const;

export const authenticationSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    realm: { type: 'string', pattern: '^[^"\\\\\\x00-\\x1f]{1,64}$', default: 'palisade', description: 'realm of the WWW-Authenticate challenge on 401 responses. Default "palisade".' },
    mtls: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        trustDomains: { type: 'array', items: { type: 'string', minLength: 1 }, default: [], description: 'SPIFFE trust domains accepted from mTLS peers; empty accepts any peer the trust bundle verified. Default [].' },
        spiffeIds: { type: 'array', items: { type: 'string', pattern: '^spiffe://' }, default: [], description: 'Accepted SPIFFE IDs: exact, or a prefix ending in "/*" (anything below it). Empty accepts any. Default [].' },
        requireSpiffeId: { type: 'boolean', default: false, description: 'Refuse a client certificate without a SPIFFE ID (URI SAN). Implied when trustDomains or spiffeIds is set. Without it, such a peer is identified by its certificate subject. Default false.' },
      },
    },
    jwt: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        issuers: { type: 'array', items: issuerSchema, default: [], description: 'Trusted issuers; the token\'s iss picks one. Default [].' },
        tokenSource: tokenSourceSchema,
        cacheMaxEntries: { type: 'integer', minimum: 1, maximum: 1000000, default: 10000, description: 'Verified tokens remembered (by SHA-256 of the token) until their exp, least recently used evicted: a repeated token skips the signature check. Default 10000.' },
      },
    },
    introspection: introspectionSchema,
    requirements: {
      type: 'array',
      default: [],
      description: 'Per route: which credentials are required. The most specific matching path wins (paths match case-insensitively, so /Admin cannot dodge the /admin requirement).',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'paths', 'require'],
        properties: {
          id: idSchema,
          paths: { type: 'array', items: pathPatternSchema, minItems: 1 },
          methods: { ...methodsSchema, default: ['*'] },
          require: requireSchema,
        },
      },
    },
    defaultRequire: { ...requireSchema, default: 'mtls', description: `Requirement for routes no entry of requirements matches. Default "mtls". ${requireSchema.description}` },
  },
} as const;
