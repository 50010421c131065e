/**
 * Applies an RFC 6902 JSON Patch the way the API server does (add, remove,
 * replace, test; strict about missing paths), to check the webhook's patches
 * by their effect rather than by their text.
 */
type Container = Record<string, unknown> | unknown[];

function parse(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new Error(`bad pointer ${pointer}`);
  return pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function walk(doc: unknown, segments: string[]): Container {
  let cur: unknown = doc;
  for (const s of segments) {
    if (Array.isArray(cur)) cur = cur[Number(s)];
    else if (cur && typeof cur === 'object' && Object.hasOwn(cur, s)) cur = (cur as Record<string, unknown>)[s];
    else throw new Error(`path segment ${s} does not exist`);
    if (cur === undefined) throw new Error(`path segment ${s} does not exist`);
  }
  if (!cur || typeof cur !== 'object') throw new Error('parent is not a container');
  return cur as Container;
}

export function applyPatch<T>(document: T, ops: readonly { op: string; path: string; value?: unknown }[]): T {
  const doc = structuredClone(document);
  for (const op of ops) {
    const segments = parse(op.path);
    const key = segments.pop();
    if (key === undefined) throw new Error('patching the root is not supported here');
    const parent = walk(doc, segments);
    if (Array.isArray(parent)) {
      const i = key === '-' ? parent.length : Number(key);
      if (!Number.isInteger(i) || i < 0 || i > parent.length || (op.op !== 'add' && i >= parent.length)) throw new Error(`index ${key} out of range in ${op.path}`);
      if (op.op === 'add') parent.splice(i, 0, structuredClone(op.value));
      else if (op.op === 'replace') parent[i] = structuredClone(op.value);
      else if (op.op === 'remove') parent.splice(i, 1);
      else throw new Error(`unsupported op ${op.op}`);
    } else {
      if (op.op !== 'add' && !Object.hasOwn(parent, key)) throw new Error(`${op.op} of missing ${op.path}`);
      if (op.op === 'add' || op.op === 'replace') parent[key] = structuredClone(op.value);
      else if (op.op === 'remove') delete parent[key];
      else throw new Error(`unsupported op ${op.op}`);
    }
  }
  return doc;
}
