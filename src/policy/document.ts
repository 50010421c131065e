/**
 * TypeScript view of a policy document *after* schema validation and defaults
 * (src/policy/schema/). Keep in step with the schema; `test/policy/` loads the
 * example policies through both.
 */
import type { StageName } from '../pipeline/types.ts';

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
  readonly jwks: { readonly cacheMaxAgeSeconds: number; readonly cooldownSeconds: number; readonly timeoutMs: number; readonly allowHttp: boolean };
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

export interface PolicySpec {
  readonly mode: 'enforce' | 'audit';
  readonly auditStages: readonly Exclude<StageName, 'forward'>[];
  readonly listener: { readonly allowPlaintext: boolean };
  readonly paths: { readonly allowMatrixParams: boolean };
  /** Sections owned by other stages are typed in their own modules. */
  readonly authentication: AuthenticationSpec;
  readonly authorization: AuthorizationSpec;
  readonly [section: string]: unknown;
}

export interface PolicyDocument {
  readonly apiVersion: string;
  readonly kind: 'Policy';
  readonly metadata: { readonly name: string; readonly version: string; readonly description?: string; readonly labels?: Readonly<Record<string, string>> };
  readonly spec: PolicySpec;
}
