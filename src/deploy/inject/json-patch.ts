/**
 * RFC 6902 JSON Patch between two JSON values. The webhook answers with it, and
 * `palisade inject` applies the same operations to the parsed YAML so that what
 * it did not change (comments, key order, quoting) stays as it was.
 * Arrays are diffed by common prefix and suffix, so prepending the sidecar to
 * initContainers is one "add" at index 0, not a rewrite of the whole list.
 */
export type PatchOp =
  | { readonly op: 'add'; readonly path: string; readonly value: unknown }
  | { readonly op: 'replace'; readonly path: string; readonly value: unknown }
  | { readonly op: 'remove'; readonly path: string };

export function escapePointer(segment: string | number): string {
  return String(segment).replace(/~/g, '~0').replace(/\//g, '~1');
}

export function unescapePointer(segment: string): string {
  return segment.replace(/~1/g, '/').replace(/~0/g, '~');
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.hasOwn(b as object, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function diff(before: unknown, after: unknown, path = ''): PatchOp[] {
  if (deepEqual(before, after)) return [];
  if (isPlainObject(before) && isPlainObject(after)) {
    const ops: PatchOp[] = [];
    for (const k of Object.keys(before)) {
      if (!Object.hasOwn(after, k)) ops.push({ op: 'remove', path: `${path}/${escapePointer(k)}` });
    }
    for (const [k, v] of Object.entries(after)) {
      const p = `${path}/${escapePointer(k)}`;
      if (!Object.hasOwn(before, k)) ops.push({ op: 'add', path: p, value: v });
      else ops.push(...diff(before[k], v, p));
    }
    return ops;
  }
  if (Array.isArray(before) && Array.isArray(after)) return diffArray(before, after, path);
  if (path === '') throw new Error('diff: cannot replace the whole document');
  return [{ op: 'replace', path, value: after }];
}

function diffArray(before: readonly unknown[], after: readonly unknown[], path: string): PatchOp[] {
  let prefix = 0;
  while (prefix < before.length && prefix < after.length && deepEqual(before[prefix], after[prefix])) prefix++;
  let suffix = 0;
  while (suffix < before.length - prefix && suffix < after.length - prefix && deepEqual(before[before.length - 1 - suffix], after[after.length - 1 - suffix])) suffix++;
  const removed = before.length - prefix - suffix;
  const added = after.length - prefix - suffix;
  const ops: PatchOp[] = [];
  if (removed === added) {
    for (let i = prefix; i < prefix + removed; i++) ops.push(...diff(before[i], after[i], `${path}/${i}`));
    return ops;
  }
  // Remove from the highest index down so earlier indexes stay valid.
  for (let i = prefix + removed - 1; i >= prefix; i--) ops.push({ op: 'remove', path: `${path}/${i}` });
  for (let i = 0; i < added; i++) ops.push({ op: 'add', path: `${path}/${prefix + i}`, value: after[prefix + i] });
  return ops;
}
