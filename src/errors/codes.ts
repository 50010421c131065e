/**
 * Every reason and error code Palisade returns or records, listed once.
 *
 * A code is part of the public contract: it appears in problem+json bodies
 * (`code`), in decision events (`unmapped.palisade.code`), in metrics labels and
 * in docs/codes.md. Never rename or reuse one; add a new code instead.
 * `test/errors/codes.test.ts` checks that docs/codes.md lists exactly these.
 */

/** What the OCSF security_control profile should say about a request denied with this code. */
export type Disposition =
  | 'allowed'
  | 'blocked'
  | 'unauthorized'
  | 'rejected'
  | 'dropped'
  | 'error';

export interface CodeSpec {
  /** HTTP status sent to the client (or recorded, for allow codes). */
  readonly status: number;
  /** Short human title, used as the problem+json `title`. */
  readonly title: string;
  /** Which disposition a SIEM should see. */
  readonly disposition: Disposition;
  /** One sentence for docs: when it happens and what to do. */
  readonly description: string;
}

export const CODES = {
  // --- allowed ---
  ALLOWED: { status: 200, title: 'Allowed', disposition: 'allowed', description: 'The request passed every stage and was forwarded to the upstream; the recorded status is the upstream status.' },

  // --- request shape (HTTP layer, before any stage) ---
  REQUEST_MALFORMED: { status: 400, title: 'Malformed request', disposition: 'rejected', description: 'The HTTP request could not be parsed (bad headers, conflicting Content-Length/Transfer-Encoding). Fix the client.' },
  PATH_INVALID: { status: 400, title: 'Invalid path', disposition: 'rejected', description: 'The path contains an encoded slash, a backslash, a NUL or control byte, invalid percent-encoding, or climbs above the root. Send a normalized path.' },
  HEADER_DUPLICATE: { status: 400, title: 'Duplicate header', disposition: 'rejected', description: 'A header that must appear at most once (Authorization, Host, Content-Type, Content-Length, the token header and the others of spec.headers.duplicates) was sent more than once: the sidecar and the service could read different copies. Send it once; spec.headers.duplicates.action: keepFirst judges and forwards the first copy instead.' },
  METHOD_OVERRIDE_NOT_ALLOWED: { status: 400, title: 'Method override not allowed', disposition: 'rejected', description: 'The request has X-HTTP-Method-Override, X-HTTP-Method or X-Method-Override, which a framework behind could run instead of the method the policy judged. Send the method itself, or set spec.headers.methodOverride (strip, or apply: the overriding method is then the one judged and forwarded).' },
  PATH_OVERRIDE_NOT_ALLOWED: { status: 400, title: 'Path override not allowed', disposition: 'rejected', description: 'The request has X-Original-URL or X-Rewrite-URL (or a header of spec.headers.pathOverride.headers), which a framework behind could route by instead of the path the policy judged. Send the path itself, or set spec.headers.pathOverride.action: strip.' },
  URL_TOO_LONG: { status: 414, title: 'URL too long', disposition: 'rejected', description: 'The request target is longer than spec.limits.maxUrlLength.' },
  HEADERS_TOO_LARGE: { status: 431, title: 'Request headers too large', disposition: 'rejected', description: 'Too many headers, or a header larger than spec.limits allows.' },
  BODY_TOO_LARGE: { status: 413, title: 'Request body too large', disposition: 'rejected', description: 'The body exceeds the route or global maxBodyBytes; the upload was cut off at the limit.' },
  CONTENT_TYPE_NOT_ALLOWED: { status: 415, title: 'Unsupported content type', disposition: 'rejected', description: 'The Content-Type is not in the route\'s allowed list.' },
  BODY_MALFORMED: { status: 400, title: 'Malformed body', disposition: 'rejected', description: 'The body is not valid for its declared content type (for example invalid JSON).' },
  BODY_LIMIT_EXCEEDED: { status: 400, title: 'Body structure limit exceeded', disposition: 'rejected', description: 'The JSON body is nested deeper, or has more keys, than spec.limits allows.' },
  BODY_FORBIDDEN_KEY: { status: 400, title: 'Forbidden key in body', disposition: 'rejected', description: 'The JSON body contains a __proto__, constructor or prototype key (prototype pollution attempt).' },
  BODY_DUPLICATE_KEY: { status: 400, title: 'Duplicate key in body', disposition: 'rejected', description: 'A JSON object in the body has the same key twice (after unescaping). Parsers disagree on which value wins, so the schema could check one value and the service act on another (I-JSON, RFC 7493, forbids it). Send each key once.' },
  REQUEST_TIMEOUT: { status: 408, title: 'Request timeout', disposition: 'dropped', description: 'The client sent headers or body too slowly (slowloris protection).' },
  SCHEMA_VIOLATION: { status: 400, title: 'Request does not match the API schema', disposition: 'rejected', description: 'Path parameters, query, headers or body failed the OpenAPI/JSON Schema of the operation; `errors` lists the JSON pointers and rules.' },
  ROUTE_UNKNOWN: { status: 404, title: 'Unknown route', disposition: 'rejected', description: 'No operation of the API schema matches the method and path, and spec.validation.unknownRoutes is deny.' },
  RESPONSE_SCHEMA_VIOLATION: { status: 502, title: 'Response does not match the API schema', disposition: 'error', description: 'Audit only, never enforced: the upstream response has a status, content type or body (including undeclared fields) the operation does not declare (spec.validation.responses.audit). Recorded as would_deny; the log line lists the JSON pointers.' },

  // --- block list ---
  BLOCKED: { status: 403, title: 'Client blocked', disposition: 'blocked', description: 'The client (identity, IP/CIDR or token id) is on the block list, statically or by the detector.' },

  // --- authentication ---
  AUTHN_REQUIRED: { status: 401, title: 'Authentication required', disposition: 'unauthorized', description: 'The route requires a credential and none was presented.' },
  AUTHN_PEER_REQUIRED: { status: 401, title: 'Client certificate required', disposition: 'unauthorized', description: 'The route requires an mTLS peer identity (SPIFFE ID) and the connection has none.' },
  AUTHN_PEER_NOT_ALLOWED: { status: 403, title: 'Peer identity not allowed', disposition: 'unauthorized', description: 'The mTLS peer\'s SPIFFE ID is outside the trust domains or IDs the policy accepts, or its certificate has no SPIFFE ID where spec.authentication.mtls requires one.' },
  AUTHN_TOKEN_MALFORMED: { status: 401, title: 'Malformed token', disposition: 'unauthorized', description: 'The bearer token is not a well-formed JWT (or is empty).' },
  AUTHN_TOKEN_INVALID: { status: 401, title: 'Invalid token', disposition: 'unauthorized', description: 'The token signature does not verify, or a required claim is missing or malformed.' },
  AUTHN_TOKEN_EXPIRED: { status: 401, title: 'Token expired', disposition: 'unauthorized', description: 'The token\'s exp is in the past (beyond the configured clock skew).' },
  AUTHN_TOKEN_NOT_YET_VALID: { status: 401, title: 'Token not yet valid', disposition: 'unauthorized', description: 'The token\'s nbf or iat is in the future (beyond the configured clock skew).' },
  AUTHN_ISSUER_UNKNOWN: { status: 401, title: 'Unknown issuer', disposition: 'unauthorized', description: 'The token\'s iss is not one of the issuers the policy trusts.' },
  AUTHN_AUDIENCE_MISMATCH: { status: 401, title: 'Wrong audience', disposition: 'unauthorized', description: 'The token\'s aud does not include an audience the policy accepts for this issuer.' },
  AUTHN_ALGORITHM_FORBIDDEN: { status: 401, title: 'Signing algorithm not allowed', disposition: 'unauthorized', description: 'The token uses an algorithm outside the issuer\'s allow-list (alg none and HMAC with public keys are always refused).' },
  AUTHN_KEY_UNKNOWN: { status: 401, title: 'Unknown signing key', disposition: 'unauthorized', description: 'No key in the issuer\'s JWKS matches the token\'s kid, after one refetch (a refetch that does not find its kid arms jwks.cooldownSeconds, inside which unknown kids are answered from memory).' },
  AUTHN_JWKS_UNAVAILABLE: { status: 503, title: 'Key set unavailable', disposition: 'error', description: 'The issuer\'s JWKS could not be fetched and no cached key can verify the token. Fails closed.' },
  AUTHN_TOKEN_INACTIVE: { status: 401, title: 'Token inactive', disposition: 'unauthorized', description: 'The introspection endpoint says the token is not active (revoked, expired or unknown).' },
  AUTHN_INTROSPECTION_UNAVAILABLE: { status: 503, title: 'Token introspection unavailable', disposition: 'error', description: 'The OAuth2 introspection endpoint failed or timed out. Fails closed.' },

  // --- authorization ---
  AUTHZ_NO_MATCHING_RULE: { status: 403, title: 'Forbidden', disposition: 'blocked', description: 'No allow rule matches the method, path and host for this identity (default deny).' },
  AUTHZ_DENY_RULE: { status: 403, title: 'Forbidden', disposition: 'blocked', description: 'An explicit deny rule matched; deny rules win over allow rules.' },
  AUTHZ_CONDITION_FAILED: { status: 403, title: 'Forbidden', disposition: 'blocked', description: 'An allow rule matched the route but its conditions (for example claims.tenant == params.tenantId) did not hold.' },

  // --- rate limiting ---
  RATE_LIMITED: { status: 429, title: 'Too many requests', disposition: 'dropped', description: 'A rate limit of the policy is exhausted for this key; Retry-After and RateLimit headers say when to retry.' },
  RATE_LIMITED_GLOBAL: { status: 429, title: 'Too many requests', disposition: 'dropped', description: 'The sidecar-wide rate limit is exhausted.' },
  QUOTA_EXCEEDED: { status: 429, title: 'Too many requests', disposition: 'dropped', description: 'A fleet-wide quota (a rate-limit rule with scope: global) is used up for this key until the end of its window; Retry-After says when the next window starts (docs/quotas.md).' },

  // --- upstream ---
  UPSTREAM_UNREACHABLE: { status: 502, title: 'Upstream unreachable', disposition: 'error', description: 'The upstream refused or reset the connection. Check that the service listens on the configured address.' },
  UPSTREAM_ERROR: { status: 502, title: 'Bad gateway', disposition: 'error', description: 'The upstream sent an invalid response or closed it early.' },
  UPSTREAM_UNAVAILABLE: { status: 503, title: 'Upstream unavailable', disposition: 'error', description: 'The upstream connection pool is exhausted or the sidecar is shutting down.' },
  UPSTREAM_TIMEOUT: { status: 504, title: 'Upstream timeout', disposition: 'error', description: 'The upstream did not connect or answer within the configured timeout.' },

  // --- sidecar ---
  POLICY_UNAVAILABLE: { status: 503, title: 'No policy loaded', disposition: 'error', description: 'The sidecar has no valid policy yet; every request is denied until one loads.' },
  INTERNAL_ERROR: { status: 500, title: 'Internal error', disposition: 'error', description: 'An unexpected error in the sidecar; the request was denied (fail closed). The log line with the request id has details.' },

  // --- configuration (never on the request path; CLI and reload) ---
  POLICY_INVALID: { status: 422, title: 'Invalid policy', disposition: 'error', description: 'The policy document failed schema validation or compilation; the message names the field, the value and the fix. The previous policy stays in force.' },
  POLICY_UNREADABLE: { status: 422, title: 'Unreadable policy', disposition: 'error', description: 'The policy file could not be read or parsed as YAML/JSON.' },
  POLICY_SIGNATURE_MISSING: { status: 422, title: 'Unsigned policy', disposition: 'error', description: 'Signatures are required (PALISADE_POLICY_REQUIRE_SIGNATURE) and the policy has no signature file beside it (policy.yaml.sig). Sign it (palisade policy sign, or cosign sign-blob) and publish the signature with it. The previous policy stays in force; at start the sidecar does not start.' },
  POLICY_SIGNATURE_MALFORMED: { status: 422, title: 'Malformed policy signature', disposition: 'error', description: 'The policy\'s signature file is not base64 of a DER ECDSA signature (cosign sign-blob format). The previous policy stays in force; at start the sidecar does not start.' },
  POLICY_SIGNATURE_INVALID: { status: 422, title: 'Policy signature does not verify', disposition: 'error', description: 'The policy\'s signature verifies against none of the trusted keys (PALISADE_POLICY_PUBLIC_KEYS): the policy changed after it was signed, or a key that is not trusted signed it. The previous policy stays in force; at start the sidecar does not start.' },
  CONFIG_INVALID: { status: 422, title: 'Invalid setting', disposition: 'error', description: 'A process setting (environment variable or flag) is invalid; the message names it and the accepted values.' },
} as const satisfies Record<string, CodeSpec>;

export type Code = keyof typeof CODES;

export function codeSpec(code: Code): CodeSpec {
  return CODES[code];
}

export function isCode(value: string): value is Code {
  return Object.hasOwn(CODES, value);
}

/** Error thrown by configuration and policy loading; carries a stable code. */
export class PalisadeError extends Error {
  readonly code: Code;
  constructor(code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PalisadeError';
    this.code = code;
  }
}
