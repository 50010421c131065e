/**
 * Long-lived parts that outlive a policy reload (caches, stores, clients).
 * Stage builders receive them so a reload keeps JWKS caches, dynamic block
 * entries and rate-limit buckets instead of starting cold.
 */
import type { Logger } from 'pino';

export interface Services {
  readonly logger: Logger;
  /** Current time in ms; tests may pass a controllable clock. */
  readonly now: () => number;
  /** Parts registered by each concern (authn caches, block list store, rate-limit store...). */
  readonly parts: Map<string, unknown>;
}

/** Returns the part under `key`, creating it once with `create`. */
export function servicePart<T>(services: Services, key: string, create: () => T): T {
  let part = services.parts.get(key) as T | undefined;
  if (part === undefined) {
    part = create();
    services.parts.set(key, part);
  }
  return part;
}
