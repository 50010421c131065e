/**
 * Stage names. Stable: they appear in events and metrics. A leaf module, so that the policy
 * document's types (spec.auditStages) can name stages without importing the pipeline's
 * vocabulary, which imports the document type (StageBuilder). The order the stages run in is
 * written once, in the stage registry (src/policy/stage-registry.ts).
 */
export const STAGE_NAMES = ['blocklist', 'authn', 'ratelimit', 'authz', 'validation', 'forward'] as const;
export type StageName = (typeof STAGE_NAMES)[number];
