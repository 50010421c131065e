/**
 * OpenAPI 3.0 schemas are an extended subset of JSON Schema draft 4/5; they
 * are validated here with the 2020-12 engine (as 3.1 documents are), after
 * these rewrites, applied to a copy of the whole document:
 *  - `nullable: true` -> "null" added to `type` (and to `enum`), or an anyOf with null;
 *  - boolean `exclusiveMinimum`/`exclusiveMaximum` -> the numeric form;
 *  - a `$ref` object's siblings are dropped (3.0 ignores them; 2020-12 would apply them);
 *  - `example`, `discriminator`, `xml`, `externalDocs` need nothing: unknown keywords are ignored.
 */

function convertNode(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(convertNode);
  if (node === null || typeof node !== 'object') return node;
  const o = node as Record<string, unknown>;
  if (typeof o['$ref'] === 'string') return { $ref: o['$ref'] };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) out[k] = convertNode(v);
  if (out['exclusiveMinimum'] === true && typeof out['minimum'] === 'number') {
    out['exclusiveMinimum'] = out['minimum'];
    delete out['minimum'];
  } else if (typeof out['exclusiveMinimum'] === 'boolean') delete out['exclusiveMinimum'];
  if (out['exclusiveMaximum'] === true && typeof out['maximum'] === 'number') {
    out['exclusiveMaximum'] = out['maximum'];
    delete out['maximum'];
  } else if (typeof out['exclusiveMaximum'] === 'boolean') delete out['exclusiveMaximum'];
  if (typeof out['nullable'] === 'boolean') {
    const nullable = out['nullable'];
    delete out['nullable'];
    if (nullable) {
      if (Array.isArray(out['enum']) && !out['enum'].includes(null)) out['enum'] = [...out['enum'], null];
      if (typeof out['type'] === 'string') out['type'] = [out['type'], 'null'];
      else if (Array.isArray(out['type'])) {
        if (!out['type'].includes('null')) out['type'] = [...out['type'], 'null'];
      } else return { anyOf: [out, { type: 'null' }] };
    }
  }
  return out;
}

/** A converted copy of a 3.0 document; 3.1 documents are used as they are. */
export function convert30(doc: Record<string, unknown>): Record<string, unknown> {
  return convertNode(doc) as Record<string, unknown>;
}
