/**
 * The stage registry: which module builds each stage, and the one place that says in what
 * order the stages run. It sits above the stage folders (they know only the vocabulary in
 * src/pipeline/types.ts) and below the compiler that uses it (load.ts), so no stage imports
 * the file that imports it.
 */
import { buildAuthnStage } from '../authn/stage.ts';
import { buildAuthzStage } from '../authz/stage.ts';
import { buildBlocklistIdentityStage, buildBlocklistStage } from '../blocklist/stage.ts';
import type { StageBuilder, StageName } from '../pipeline/types.ts';
import { buildRateLimitStage } from '../ratelimit/stage.ts';
import { buildValidationStage } from '../validation/stage.ts';

/** In pipeline order. The forward "stage" is the server's own last step and has no builder. */
export const STAGE_BUILDERS: readonly { readonly name: Exclude<StageName, 'forward'>; readonly build: StageBuilder }[] = [
  // Client IP / network and mTLS peer: before anything else is spent on the request.
  { name: 'blocklist', build: buildBlocklistStage },
  { name: 'authn', build: buildAuthnStage },
  // The block list again, on the identity authn has just established (subject, client id, token id).
  { name: 'blocklist', build: buildBlocklistIdentityStage },
  { name: 'ratelimit', build: buildRateLimitStage },
  { name: 'authz', build: buildAuthzStage },
  { name: 'validation', build: buildValidationStage },
];
