/**
 * TypeScript view of a policy document *after* schema validation and defaults
 * (src/policy/schema/). Keep in step with the schema; `test/policy/` loads the
 * example policies through both.
 */
import type { StageName } from '../pipeline/stage-names.ts';

export type Method = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS' | '*';

export type SubjectMatcher =
  | { readonly spiffeId: string }
  | { readonly subject: string }
  | { readonly scope: string }
  | { readonly group: string }
  | { readonly clientId: string }
  | { readonly claim: { readonly name: string; readonly equals?: string | number | boolean; readonly includes?: string | number } };

export interface Condition {
  readonly claim: string;
  readonly equalsParam?: string;
  readonly equals?: string | number | boolean;
  readonly in?: readonly (string | number | boolean)[];
}

export interface AuthzRule {
  readonly id: string;
  readonly effect: 'allow' | 'deny';
  readonly methods: readonly Method[];
  readonly paths: readonly string[];
  readonly hosts?: readonly string[];
  readonly roles?: readonly string[];
  readonly authenticated: boolean;
  readonly public: boolean;
  readonly when?: readonly Condition[];
  readonly audit: boolean;
}

export interface AuthorizationSpec {
  readonly roles: readonly { readonly name: string; readonly subjects: readonly SubjectMatcher[] }[];
  readonly rules: readonly AuthzRule[];
}

/** Credential kinds of spec.authentication (src/authn/). */
export type AuthnMethod = 'mtls' | 'jwt' | 'introspection';

/** "none", one method, or a combination. */
export type AuthnRequirement = 'none' | AuthnMethod | { readonly anyOf: readonly AuthnMethod[] } | { readonly allOf: readonly AuthnMethod[] };

export interface TokenSourceSpec {
  readonly from: 'bearer' | 'header' | 'cookie';
  /** Header or cookie name (not for bearer). */
  readonly name?: string;
}

export interface ClaimMappingSpec {
  readonly scopes: readonly string[];
  readonly groups: readonly string[];
}

export interface JwtIssuerSpec {
  readonly issuer: string;
  readonly jwksUri: string;
  readonly audiences: readonly string[];
  readonly algorithms: readonly string[];
  readonly clockSkewSeconds: number;
  readonly claims: ClaimMappingSpec;
  readonly jwks: { readonly cacheMaxAgeSeconds: number; readonly cacheMinAgeSeconds: number; readonly cooldownSeconds: number; readonly timeoutMs: number; readonly allowHttp: boolean };
}

export interface IntrospectionSpec {
  readonly endpoint: string;
  readonly clientId: string;
  /** A reference, never the secret; the string form is refused at load. */
  readonly clientSecret: { readonly file: string } | { readonly env: string } | string;
  readonly authMethod: 'client_secret_basic' | 'client_secret_post';
  readonly timeoutMs: number;
  readonly cacheMaxSeconds: number;
  readonly inactiveCacheSeconds: number;
  readonly cacheMaxEntries: number;
  readonly audiences?: readonly string[];
  readonly clockSkewSeconds: number;
  readonly tokenSource: TokenSourceSpec;
  readonly claims: ClaimMappingSpec;
  readonly allowHttp: boolean;
}

export interface AuthnRequirementRule {
  readonly id: string;
  readonly paths: readonly string[];
  readonly methods: readonly Method[];
  readonly require: AuthnRequirement;
}

export interface AuthenticationSpec {
  readonly realm: string;
  readonly mtls: { readonly trustDomains: readonly string[]; readonly spiffeIds: readonly string[]; readonly requireSpiffeId: boolean };
  readonly jwt: { readonly issuers: readonly JwtIssuerSpec[]; readonly tokenSource: TokenSourceSpec; readonly cacheMaxEntries: number };
  readonly introspection?: IntrospectionSpec;
  readonly requirements: readonly AuthnRequirementRule[];
  readonly defaultRequire: AuthnRequirement;
}

/** spec.headers (schema/headers.ts): requests the service could read differently. */
export interface HeadersSpec {
  readonly duplicates: { readonly action: 'refuse' | 'keepFirst'; readonly singletons: readonly string[] };
  readonly methodOverride: { readonly action: 'refuse' | 'strip' | 'apply'; readonly methods: readonly ('PUT' | 'PATCH' | 'DELETE')[] };
  readonly pathOverride: { readonly action: 'refuse' | 'strip'; readonly headers: readonly string[] };
}

export interface PolicySpec {
  readonly mode: 'enforce' | 'audit';
  readonly auditStages: readonly Exclude<StageName, 'forward'>[];
  readonly listener: { readonly allowPlaintext: boolean };
  readonly paths: { readonly allowMatrixParams: boolean };
  readonly headers: HeadersSpec;
  /** Sections owned by other stages are typed in their own modules. */
  readonly authentication: AuthenticationSpec;
  readonly authorization: AuthorizationSpec;
  readonly blocklist: BlocklistSpec;
  readonly rateLimits: RateLimitsSpec;
  readonly limits: LimitsSpec;
  /** Absent: no schema validation. */
  readonly validation?: ValidationSpec;
  readonly [section: string]: unknown;
}

export interface PolicyDocument {
  readonly apiVersion: string;
  readonly kind: 'Policy';
  readonly metadata: { readonly name: string; readonly version: string; readonly description?: string; readonly labels?: Readonly<Record<string, string>> };
  readonly spec: PolicySpec;
}

/** spec.blocklist (schema/blocklist.ts). */
export interface BlocklistEntrySpec {
  readonly id?: string;
  readonly ip?: string;
  readonly cidr?: string;
  readonly subject?: string;
  readonly spiffeId?: string;
  readonly clientId?: string;
  readonly tokenId?: string;
  readonly reason: string;
  /** RFC 3339. */
  readonly expires?: string;
  readonly audit: boolean;
}

export interface BlocklistSpec {
  /**
   * Empty in a policy loaded from its text (src/policy/load.ts), which keeps the entries
   * compiled instead: read them with policyBlocklist (src/blocklist/policy-blocklist.ts).
   */
  readonly entries: readonly BlocklistEntrySpec[];
}

/** spec.rateLimits (schema/rate-limits.ts). */
export type RateLimitKeyPart = 'identity' | 'spiffeId' | 'subject' | 'clientId' | 'ip' | 'route' | 'method' | `claim:${string}`;
export type RatePer = 'second' | 'minute' | 'hour';
export type QuotaWindow = 'second' | 'minute' | 'hour' | 'day';

export interface RateLimitRuleSpec {
  readonly id: string;
  readonly scope: 'local' | 'global';
  readonly key: readonly RateLimitKeyPart[];
  /** Local rules (the schema requires it when scope is local). */
  readonly rate?: number;
  readonly per: RatePer;
  /** Global rules (required when scope is global). */
  readonly limit?: number;
  readonly window?: QuotaWindow;
  readonly burst?: number;
  readonly methods: readonly Method[];
  readonly paths: readonly string[];
  readonly audit: boolean;
}

export interface RateLimitsSpec {
  readonly global?: { readonly rate: number; readonly per: RatePer; readonly burst?: number; readonly audit: boolean };
  readonly maxKeys: number;
  readonly rules: readonly RateLimitRuleSpec[];
}

/** spec.limits (schema/limits.ts). */
export interface LimitsRouteSpec {
  readonly id: string;
  readonly methods: readonly Method[];
  readonly paths: readonly string[];
  readonly maxBodyBytes?: number;
  readonly maxJsonDepth?: number;
  readonly maxJsonKeys?: number;
  readonly contentTypes?: readonly string[];
  readonly audit: boolean;
}

export interface LimitsSpec {
  readonly maxUrlLength: number;
  readonly maxHeaderCount: number;
  readonly maxHeaderBytes: number;
  readonly maxBodyBytes: number;
  readonly maxJsonDepth: number;
  readonly maxJsonKeys: number;
  readonly contentTypes: readonly string[];
  readonly audit: boolean;
  readonly routes: readonly LimitsRouteSpec[];
}

/** spec.validation (schema/validation.ts). Schemas are JSON Schema objects (or booleans). */
export type JsonSchemaSpec = Readonly<Record<string, unknown>> | boolean;

export interface ValidationRouteSpec {
  readonly id: string;
  readonly method: Exclude<Method, '*'>;
  readonly path: string;
  readonly params?: JsonSchemaSpec;
  readonly query?: JsonSchemaSpec;
  readonly headers?: JsonSchemaSpec;
  readonly body?: { readonly required: boolean; readonly content?: Readonly<Record<string, JsonSchemaSpec>> };
  readonly audit: boolean;
}

export interface ValidationSpec {
  readonly openapi?: { readonly file: string; readonly basePath: string; readonly auditOperations: readonly string[]; readonly audit: boolean };
  readonly routes: readonly ValidationRouteSpec[];
  readonly unknownRoutes: 'deny' | 'allow' | 'audit';
  readonly responses: { readonly audit: boolean; readonly undeclaredFields: boolean; readonly maxBytes: number };
}
