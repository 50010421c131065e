/**
 * spec.headers: requests that the sidecar and the service behind it could read
 * differently. Owned by src/http/ambiguity.ts, checked right after the path is
 * normalized, before any stage. Every default refuses.
 */

const headerNameSchema = {
  type: 'string',
  pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$",
  maxLength: 100,
  description: 'A header field name (RFC 9110 token), matched case-insensitively.',
} as const;

export const headersSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  description: 'Headers that would let the service act on another reading of the request than the one the policy judged.',
  properties: {
    duplicates: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'Singleton headers (Authorization, Proxy-Authorization, Host, Content-Type, Content-Length, Transfer-Encoding, Origin, Referer, User-Agent, Range, If-Range, If-Modified-Since, If-Unmodified-Since, Max-Forwards, Date, From, the header a token is read from, and `singletons`) that arrive more than once.',
      properties: {
        action: {
          type: 'string',
          enum: ['refuse', 'keepFirst'],
          default: 'refuse',
          description: 'refuse: 400 HEADER_DUPLICATE. keepFirst: judge and forward the first value only (the service never sees the others). Default refuse.',
        },
        singletons: { type: 'array', uniqueItems: true, default: [], items: headerNameSchema, description: 'More header names that must arrive at most once (for example x-tenant-id). Default [].' },
      },
    },
    methodOverride: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'X-HTTP-Method-Override, X-HTTP-Method and X-Method-Override, which some frameworks honour instead of the request method.',
      properties: {
        action: {
          type: 'string',
          enum: ['refuse', 'strip', 'apply'],
          default: 'refuse',
          description: 'refuse: 400 METHOD_OVERRIDE_NOT_ALLOWED. strip: remove the headers, so the service acts on the request method, the one judged. apply: on a POST, the overriding method (one of `methods`, the same in every override header) becomes the request method: every stage judges it, the upstream receives it as the method, without the headers; anything else is refused. Default refuse.',
        },
        methods: {
          type: 'array',
          uniqueItems: true,
          minItems: 1,
          default: ['PUT', 'PATCH', 'DELETE'],
          items: { type: 'string', enum: ['PUT', 'PATCH', 'DELETE'] },
          description: 'With action apply: the methods an override may name. Default [PUT, PATCH, DELETE].',
        },
      },
    },
    pathOverride: {
      type: 'object',
      additionalProperties: false,
      default: {},
      description: 'X-Original-URL and X-Rewrite-URL (and `headers`), which some frameworks route by instead of the request path.',
      properties: {
        action: {
          type: 'string',
          enum: ['refuse', 'strip'],
          default: 'refuse',
          description: 'refuse: 400 PATH_OVERRIDE_NOT_ALLOWED. strip: remove the headers before forwarding. They are never honoured: the path judged is the request path. Default refuse.',
        },
        headers: { type: 'array', uniqueItems: true, default: [], items: headerNameSchema, description: 'More header names treated as path overrides (for example x-forwarded-prefix, if the service honours it). Default [].' },
      },
    },
  },
} as const;
