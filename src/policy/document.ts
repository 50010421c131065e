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

export interface PolicySpec {
  readonly mode: 'enforce' | 'audit';
  readonly auditStages: readonly Exclude<StageName, 'forward'>[];
  readonly listener: { readonly allowPlaintext: boolean };
  readonly paths: { readonly allowMatrixParams: boolean };
  /** Sections owned by other stages are typed in their own modules. */
  readonly authentication: Readonly<Record<string, unknown>>;
  readonly authorization: AuthorizationSpec;
  readonly [section: string]: unknown;
}

export interface PolicyDocument {
  readonly apiVersion: string;
  readonly kind: 'Policy';
  readonly metadata: { readonly name: string; readonly version: string; readonly description?: string; readonly labels?: Readonly<Record<string, string>> };
  readonly spec: PolicySpec;
}
