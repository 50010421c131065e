/**
 * Long-lived parts that outlive a policy reload (caches, stores, clients).
 * Stage builders receive them so a reload keeps JWKS caches, dynamic block
 * entries and rate-limit buckets instead of starting cold.
 *
 * The parts are typed without this module knowing the stages: each concern
 * declares its part by augmenting ServiceParts beside the code that owns it
 * (`declare module '../pipeline/services.ts' { interface ServiceParts { ... } }`),
 * so a key is checked at compile time and the pipeline imports no stage.
 */
import type { Logger } from 'pino';

/** One entry per concern, added by that concern (authn, blocklist, ratelimit). */
export interface ServiceParts {}

export interface Services {
  readonly logger: Logger;
  /** Current time in ms; tests may pass a controllable clock. */
  readonly now: () => number;
  /** The parts created so far (each once, on first use). */
  readonly parts: Partial<ServiceParts>;
}

export function createServices(logger: Logger, now: () => number = Date.now): Services {
  return { logger, now, parts: {} };
}

/** Returns the part under `key`, creating it once with `create`. */
export function servicePart<K extends keyof ServiceParts>(services: Services, key: K, create: () => ServiceParts[K]): ServiceParts[K] {
  const existing = services.parts[key];
  if (existing !== undefined) return existing as ServiceParts[K];
  const part = create();
  (services.parts as ServiceParts)[key] = part;
  return part;
}
