/**
 * The vocabulary of the detector's config schema: the ids it is keyed by, the leaf builders (each
 * leaf has a type, a default and a description with its unit) and FromSchema, which derives the
 * validated config's type from the schema itself, so each setting is written once.
 *
 * FromSchema covers the subset of JSON Schema these files use: integer/number/boolean/string
 * leaves, string enums, arrays, and objects with `properties`. A property is present in the
 * derived type when it has a `default` (ajv's useDefaults fills it in) or is `required`; any other
 * is optional. The builders return literal types (`'integer' as const`) for that reason.
 */
export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const WINDOW_NAMES = ['short', 'medium', 'long'] as const;
export type WindowName = (typeof WINDOW_NAMES)[number];

/** Every detection the engine knows, by stable id (metric label, alert field, feedback key). */
export const DETECTION_IDS = [
  'rate.burst',
  'rate.sustained',
  'auth.failures',
  'auth.slow',
  'enumeration.paths',
  'enumeration.not-found',
  'enumeration.forbidden',
  'probing.schema',
  'probing.size',
  'population.requests',
  'population.auth-failures',
  'population.not-found',
  'population.violations',
] as const;
export type DetectionId = (typeof DETECTION_IDS)[number];

/**
 * Detections whose evidence is failed requests (authentication failures, authorization denials,
 * 404s, violations): the ones a policy mistake or an outage can raise for every client at once,
 * and so the ones whose automatic blocks the blast-radius guard suspends. Rate detections are not
 * among them: a flood is still blocked while the guard holds.
 */
export const FAILURE_DETECTIONS: readonly DetectionId[] = [
  'auth.failures',
  'auth.slow',
  'enumeration.not-found',
  'enumeration.forbidden',
  'probing.schema',
  'population.auth-failures',
  'population.not-found',
  'population.violations',
];

// ---- the type derived from a schema ----
type Simplify<T> = { [K in keyof T]: T[K] } & {};
type KeysWithDefault<P> = { [K in keyof P]: P[K] extends { readonly default: unknown } ? K : never }[keyof P];
type RequiredKeys<S> = S extends { readonly required: readonly (infer R)[] } ? R : never;
type ObjectOf<P, Present> = Simplify<
  { readonly [K in keyof P & Present]: FromSchema<P[K]> } & { readonly [K in Exclude<keyof P, Present>]?: FromSchema<P[K]> }
>;

/** The type of data that passed `S` (with defaults filled in). */
export type FromSchema<S> = S extends { readonly enum: readonly (infer E)[] }
  ? E
  : S extends { readonly type: 'integer' | 'number' }
    ? number
    : S extends { readonly type: 'boolean' }
      ? boolean
      : S extends { readonly type: 'string' }
        ? string
        : S extends { readonly type: 'array'; readonly items: infer I }
          ? readonly FromSchema<I>[]
          : S extends { readonly type: 'object'; readonly properties: infer P }
            ? ObjectOf<P, KeysWithDefault<P> | RequiredKeys<S>>
            : unknown;

// ---- leaf builders ----
export const int = (def: number, min: number, description: string, max?: number) => ({ type: 'integer' as const, default: def, minimum: min, ...(max !== undefined ? { maximum: max } : {}), description });
export const num = (def: number, min: number, description: string, max?: number) => ({ type: 'number' as const, default: def, minimum: min, ...(max !== undefined ? { maximum: max } : {}), description });
export const bool = (def: boolean, description: string) => ({ type: 'boolean' as const, default: def, description });
export const str = (def: string, description: string, minLength?: number) => ({ type: 'string' as const, ...(minLength !== undefined ? { minLength } : {}), default: def, description });
export const oneOf = <const E extends readonly string[]>(values: E, def: E[number], description: string) => ({ type: 'string' as const, enum: [...values] as E[number][], default: def, description });
export const windowRef = (def: WindowName) => oneOf(WINDOW_NAMES, def, `Which sliding window of engine.windows the detection reads (short/medium/long). Default ${def}.`);
export const obj = <const P extends Record<string, unknown>>(description: string, properties: P) => ({ type: 'object' as const, additionalProperties: false as const, default: {}, description, properties });

/** An object with one property per key of `keys`, built by `f`. */
export function keyed<const K extends string, V>(keys: readonly K[], f: (k: K) => V): { readonly [P in K]: V } {
  return Object.fromEntries(keys.map((k) => [k, f(k)])) as { readonly [P in K]: V };
}
