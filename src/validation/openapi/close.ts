/**
 * For response checks that report undeclared fields: a copy of the document
 * in which object schemas are closed with `unevaluatedProperties: false`.
 * A schema used as a branch of allOf/anyOf/oneOf (directly or through $ref)
 * is left open and its parent is closed instead: 2020-12's
 * unevaluatedProperties sees the properties every applied branch declared,
 * whereas closing a branch would reject the fields its siblings declare.
 */
import { resolvePointer } from './read.ts';

type Obj = Record<string, unknown>;

function isObj(x: unknown): x is Obj {
  return x !== null && typeof x === 'object' && !Array.isArray(x);
}

const APPLICATORS = ['allOf', 'anyOf', 'oneOf'] as const;
const OPEN_KEYWORDS = ['additionalProperties', 'unevaluatedProperties', 'patternProperties'] as const;

export function closeObjectSchemas(doc: Obj): Obj {
  const copy = structuredClone(doc);
  const branches = new Set<unknown>();
  const walk = (node: unknown, visit: (o: Obj) => void) => {
    if (Array.isArray(node)) {
      for (const x of node) walk(x, visit);
      return;
    }
    if (!isObj(node)) return;
    visit(node);
    for (const v of Object.values(node)) walk(v, visit);
  };
  walk(copy, (o) => {
    for (const k of APPLICATORS) {
      const list = o[k];
      if (!Array.isArray(list)) continue;
      for (const b of list) {
        branches.add(b);
        if (isObj(b) && typeof b['$ref'] === 'string' && (b['$ref'] as string).startsWith('#')) {
          try {
            branches.add(resolvePointer(copy, b['$ref'] as string));
          } catch {
            // Unresolvable refs fail later, at compile, with the document's own message.
          }
        }
      }
    }
  });
  walk(copy, (o) => {
    if (branches.has(o) || OPEN_KEYWORDS.some((k) => o[k] !== undefined)) return;
    const declares = isObj(o['properties']) || APPLICATORS.some((k) => Array.isArray(o[k]));
    const objectish = o['type'] === 'object' || (Array.isArray(o['type']) && o['type'].includes('object')) || (o['type'] === undefined && isObj(o['properties']));
    if (declares && objectish) o['unevaluatedProperties'] = false;
    else if (APPLICATORS.some((k) => Array.isArray(o[k])) && o['type'] === undefined && !isObj(o['items'])) {
      // A composition of object schemas (allOf of $refs, no own type): close at this level.
      o['unevaluatedProperties'] = false;
    }
  });
  return copy;
}
