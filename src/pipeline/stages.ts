/**
 * The stage registry: which module builds each stage, in pipeline order.
 * A builder returns null when the policy does not use its stage, so an unused
 * stage costs nothing per request.
 */
import type { PolicyDocument } from '../policy/document.ts';
import type { Services } from '../sidecar/services.ts';
import type { Stage, StageName } from './types.ts';
import { buildAuthnStage } from '../authn/stage.ts';
import { buildAuthzStage } from '../authz/stage.ts';
import { buildBlocklistIdentityStage, buildBlocklistStage } from '../blocklist/stage.ts';
import { buildRateLimitStage } from '../ratelimit/stage.ts';
import { buildValidationStage } from '../validation/stage.ts';

export interface CompileContext {
  /** Directory of the policy file: relative paths in the policy resolve against it. */
  readonly baseDir: string;
  readonly services: Services;
  /** Declares route templates (for metrics labels, params, rate-limit keys). */
  addRoutes(routes: readonly { template: string; methods?: readonly string[] }[]): void;
}

export type StageBuilder = (doc: PolicyDocument, cc: CompileContext) => Stage | null | Promise<Stage | null>;

/** In pipeline order (see STAGE_ORDER). */
export const STAGE_BUILDERS: readonly { readonly name: Exclude<StageName, 'forward'>; readonly build: StageBuilder }[] = [
  { name: 'blocklist', build: buildBlocklistStage },
  // The same stage again right after authn (runsAfter), on the authenticated identity.
  { name: 'blocklist', build: buildBlocklistIdentityStage },
  { name: 'authn', build: buildAuthnStage },
  { name: 'ratelimit', build: buildRateLimitStage },
  { name: 'authz', build: buildAuthzStage },
  { name: 'validation', build: buildValidationStage },
];
