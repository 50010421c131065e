/**
 * The one way settings and options are declared: a table of specs (type,
 * default, description with unit, bounds), turned into an ajv schema and into
 * the documentation table. Used by the sidecar settings, the webhook settings
 * and the inject options, so each is validated and documented the same way.
 */

export interface ValueSpec {
  readonly type: 'string' | 'integer' | 'number' | 'boolean';
  readonly default: string | number | boolean;
  readonly description: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly enum?: readonly string[];
  readonly pattern?: string;
}

/** An object schema with one property per spec (additional properties refused). */
export function schemaOfSpecs(specs: Readonly<Record<string, ValueSpec>>): Record<string, unknown> {
  return {
    type: 'object',
    additionalProperties: false,
    properties: Object.fromEntries(
      Object.entries(specs).map(([k, spec]) => {
        const p: Record<string, unknown> = { type: spec.type, default: spec.default, description: spec.description };
        if (spec.minimum !== undefined) p['minimum'] = spec.minimum;
        if (spec.maximum !== undefined) p['maximum'] = spec.maximum;
        if (spec.enum) p['enum'] = spec.enum;
        if (spec.pattern) p['pattern'] = spec.pattern;
        return [k, p];
      }),
    ),
  };
}

/** Values of the specs' environment variables that are set and not empty. */
export function readEnvSpecs(specs: Readonly<Record<string, { readonly env: string }>>, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  for (const [k, s] of Object.entries(specs)) {
    const v = env[s.env];
    if (v !== undefined && v !== '') data[k] = v;
  }
  return data;
}

/** Markdown table of environment-variable settings: variable, default, meaning. */
export function envSpecsTable(specs: Readonly<Record<string, ValueSpec & { readonly env: string }>>): string {
  const rows = Object.values(specs).map((s) => `| \`${s.env}\` | \`${String(s.default)}\` | ${s.description} |`);
  return ['| Variable | Default | Meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
