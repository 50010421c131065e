/**
 * A policy's own block list (spec.blocklist.entries), compiled once per policy document: the
 * index both checks of the stage read, and what the metrics and `policy diff` need of it (the
 * count per kind, the entry ids).
 *
 * A policy loaded by the sidecar (src/policy/load.ts) compiles its entries while it loads and
 * keeps only this compact form: the document's `entries` is then empty, and 100,000 entries are
 * ~4 MB of typed arrays instead of ~14 MB of frozen objects kept beside them
 * (bench/blocklist.ts). A document validated by other means (tools, tests) keeps its entries,
 * and they are compiled here on first use. Read a policy's block list through
 * `policyBlocklist`, never through `spec.blocklist.entries`.
 */
import type { BlocklistEntrySpec, PolicyDocument } from '../policy/document.ts';
import { BlockIndex } from './block-index.ts';
import { BLOCK_KINDS, BlockEntryError, makeEntry, type BlockEntry, type BlockKind } from './entry.ts';

export interface PolicyBlocklist {
  readonly index: BlockIndex;
  /** Entries per kind. */
  readonly byKind: ReadonlyMap<BlockKind, number>;
  /** The entries' own ids (spec.blocklist.entries[].id), for `policy diff`. */
  readonly ids: ReadonlySet<string>;
}

const compiled = new WeakMap<PolicyDocument, PolicyBlocklist>();

/** Compiles the entries; throws Error naming the entry (spec.blocklist.entries[i]) and what to fix. */
export function compileBlockEntries(entries: readonly BlocklistEntrySpec[], now: number): PolicyBlocklist {
  const index = new BlockIndex();
  const byKind = new Map<BlockKind, number>();
  const ids = new Set<string>();
  entries.forEach((spec, i) => {
    const where = `spec.blocklist.entries[${i}]`;
    const kinds = BLOCK_KINDS.filter((k) => spec[k] !== undefined);
    if (kinds.length !== 1) {
      throw new Error(`${where}: give exactly one of ${BLOCK_KINDS.join(', ')} (found ${kinds.length === 0 ? 'none' : kinds.join(' and ')})`);
    }
    const kind = kinds[0] as BlockKind;
    let expiresAt: number | null = null;
    if (spec.expires !== undefined) expiresAt = Date.parse(spec.expires);
    let entry: BlockEntry;
    try {
      entry = makeEntry({ kind, value: spec[kind] as string, reason: spec.reason, source: 'policy', expiresAt, ...(spec.id ? { rule: spec.id } : {}), audit: spec.audit }, now);
    } catch (err) {
      if (err instanceof BlockEntryError) throw new Error(`${where}.${kind}: ${err.message}`);
      throw err;
    }
    const dup = index.set(entry);
    if (dup) throw new Error(`${where}: ${kind} "${entry.value}" is already blocked by an earlier entry (${dup.rule}); remove one of them`);
    byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
    if (spec.id) ids.add(spec.id);
  });
  return { index, byKind, ids };
}

/** The document's block list, compiled (once per document). */
export function policyBlocklist(doc: PolicyDocument, now: number): PolicyBlocklist {
  let c = compiled.get(doc);
  if (!c) {
    // Optional chaining: a policy compiled before the blocklist section existed has none.
    c = compileBlockEntries(doc.spec.blocklist?.entries ?? [], now);
    compiled.set(doc, c);
  }
  return c;
}

/**
 * Compiles a document's entries and empties them, before the document is frozen: from then on
 * the compiled form is all that is kept. The document must be the loader's own, not yet frozen.
 */
export function detachBlockEntries(doc: PolicyDocument, now: number): void {
  const c = compileBlockEntries(doc.spec.blocklist.entries, now);
  (doc.spec.blocklist as { entries: readonly BlocklistEntrySpec[] }).entries = [];
  compiled.set(doc, c);
}
