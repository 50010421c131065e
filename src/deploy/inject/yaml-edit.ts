/**
 * Applies JSON Patch operations to a parsed YAML document in place, so that
 * `palisade inject` changes only what it must: comments, key order and quoting
 * elsewhere in the manifest survive. The caller checks the result against the
 * expected object and falls back to a fresh serialization when it differs
 * (for example when the path runs through a YAML alias).
 */
import { isMap, isSeq, type Document } from 'yaml';
import { unescapePointer, type PatchOp } from './json-patch.ts';

export function applyToDocument(doc: Document, ops: readonly PatchOp[]): void {
  for (const op of ops) {
    const segments = op.path.split('/').slice(1).map(unescapePointer);
    const last = segments.pop();
    if (last === undefined) throw new Error('cannot patch the document root');
    const parent = segments.length === 0 ? doc.contents : doc.getIn(segments, true);
    if (isMap(parent)) {
      if (op.op === 'remove') parent.delete(last);
      else parent.set(last, doc.createNode(op.value));
    } else if (isSeq(parent)) {
      const index = last === '-' ? parent.items.length : Number(last);
      if (!Number.isInteger(index) || index < 0 || index > parent.items.length) throw new Error(`bad index in ${op.path}`);
      if (op.op === 'add') parent.items.splice(index, 0, doc.createNode(op.value));
      else if (op.op === 'replace') parent.items[index] = doc.createNode(op.value);
      else parent.items.splice(index, 1);
    } else {
      throw new Error(`${op.path}: parent is not a plain YAML map or list`);
    }
  }
}
