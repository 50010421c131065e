/**
 * `palisade inject` on a whole manifest: one or many YAML documents (or a JSON
 * object, or a v1 List), every workload injected, Services pointed at the
 * sidecar. All or nothing: any error throws before a byte of output exists, so
 * a pipeline never applies a half-injected manifest.
 */
import { parseAllDocuments, type Document } from 'yaml';
import { InjectError } from './errors.ts';
import { deepEqual, diff } from './json-patch.ts';
import type { InjectOptions } from './options.ts';
import { rewireService } from './service.ts';
import type { JsonObject } from './sidecar.ts';
import { applyToDocument } from './yaml-edit.ts';
import { checkObject, describe, injectObject, namespaceOf, type InjectedPod } from './workload.ts';

/** Far above any real manifest; a bound on what a hostile input can make us parse. */
export const MAX_INPUT_BYTES = 16 * 1024 * 1024;
const MAX_ALIASES = 100;

export interface ManifestOptions {
  /** Names the input in messages: a file path, or "stdin". */
  readonly source: string;
  readonly skipUnknownKinds?: boolean;
}

export interface ObjectReport {
  readonly object: string;
  /** `unchanged`: already injected with these options (injecting twice changes nothing, and says so). */
  readonly status: 'injected' | 'unchanged' | 'skipped' | 'passed-through' | 'service-rewired';
  readonly reason?: string;
}

export interface ManifestResult {
  readonly output: string;
  readonly reports: readonly ObjectReport[];
}

interface Slot {
  readonly where: string;
  readonly before: JsonObject;
  after: JsonObject;
}

export function injectManifest(text: string, opts: InjectOptions, mo: ManifestOptions): ManifestResult {
  if (Buffer.byteLength(text) > MAX_INPUT_BYTES) {
    throw new InjectError('INJECT_INPUT_TOO_LARGE', `${mo.source}: input is larger than ${MAX_INPUT_BYTES} bytes`);
  }
  if (/^\s*\{/.test(text)) return injectJson(text, opts, mo);

  const docs = parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true, strict: true });
  if (!Array.isArray(docs)) throw new InjectError('INJECT_YAML_INVALID', `${mo.source}: not a YAML stream`);
  for (const [i, doc] of docs.entries()) {
    if (doc.errors.length > 0) {
      throw new InjectError('INJECT_YAML_INVALID', `${mo.source}: document ${i + 1}: invalid YAML: ${doc.errors.map((e) => e.message).join('; ')}`);
    }
  }
  const slots: (Slot | undefined)[] = docs.map((doc, i) => {
    const where = `${mo.source}: document ${i + 1}`;
    let js: unknown;
    try {
      js = doc.toJS({ maxAliasCount: MAX_ALIASES });
    } catch (err) {
      throw new InjectError('INJECT_YAML_INVALID', `${where}: ${(err as Error).message}`);
    }
    // An empty document (a stray or trailing "---", a comment alone) holds no object.
    if (js === null || js === undefined) return undefined;
    checkObject(js, where);
    return { where: `${where} (${describe(js)})`, before: js, after: js };
  });

  const reports = processObjects(slots.filter((s): s is Slot => s !== undefined), opts, mo);

  // The input cut at each document's start: a document we do not change is copied
  // byte for byte (its formatting, comments, even a trailing "---"); a changed one
  // is printed from its edited syntax tree.
  const out: string[] = [];
  for (const [i, doc] of docs.entries()) {
    const from = i === 0 ? 0 : doc.range[0];
    const to = i + 1 < docs.length ? docs[i + 1]!.range[0] : text.length;
    const slot = slots[i];
    if (!slot || deepEqual(slot.before, slot.after)) {
      out.push(text.slice(from, to));
      continue;
    }
    editDocument(doc, slot);
    // Every document after the first needs its separator, whatever the input had.
    if (i > 0) doc.directives.docStart = true;
    const printed = doc.toString({ lineWidth: 0 });
    const last = out.at(-1);
    if (last !== undefined && !last.endsWith('\n')) out[out.length - 1] = `${last}\n`;
    out.push(printed);
  }
  return { output: out.join(''), reports };
}

function injectJson(text: string, opts: InjectOptions, mo: ManifestOptions): ManifestResult {
  let js: unknown;
  try {
    js = JSON.parse(text);
  } catch (err) {
    throw new InjectError('INJECT_YAML_INVALID', `${mo.source}: invalid JSON: ${(err as Error).message}`);
  }
  checkObject(js, mo.source);
  const slot: Slot = { where: `${mo.source} (${describe(js)})`, before: js, after: js };
  const reports = processObjects([slot], opts, mo);
  return { output: `${JSON.stringify(slot.after, null, 2)}\n`, reports };
}

/** Workloads first (their pods decide the wiring), then Services. v1 Lists are opened. */
function processObjects(slots: readonly Slot[], opts: InjectOptions, mo: ManifestOptions): ObjectReport[] {
  const reports: ObjectReport[] = [];
  const pods: InjectedPod[] = [];
  const services: { slot: Slot; path: number | undefined }[] = [];

  const visit = (obj: JsonObject, where: string, onResult: (o: JsonObject) => void, slot: Slot, path: number | undefined): void => {
    if (obj['kind'] === 'Service') {
      services.push({ slot, path });
      return;
    }
    const r = injectObject(obj, opts, where, mo.skipUnknownKinds ?? false);
    if (r.status === 'injected') pods.push(r.pod);
    const status = r.status === 'injected' && deepEqual(obj, r.object) ? 'unchanged' : r.status;
    reports.push({ object: describe(obj), status, ...(r.status === 'skipped' ? { reason: r.reason } : status === 'unchanged' ? { reason: 'already injected with these options' } : {}) });
    onResult(r.object);
  };

  for (const slot of slots) {
    const obj = slot.before;
    if (obj['kind'] === 'List' && obj['apiVersion'] === 'v1') {
      const items = obj['items'];
      if (!Array.isArray(items)) throw new InjectError('INJECT_NOT_AN_OBJECT', `${slot.where}: items must be a list`);
      const next = { ...obj, items: [...items] as unknown[] };
      slot.after = next;
      items.forEach((item, j) => {
        const where = `${slot.where} items[${j}]`;
        checkObject(item, where);
        visit(item, `${where} (${describe(item)})`, (o) => { next.items[j] = o; }, slot, j);
      });
    } else {
      visit(obj, slot.where, (o) => { slot.after = o; }, slot, undefined);
    }
  }

  for (const { slot, path } of services) {
    const container = slot.after;
    const svc = path === undefined ? container : ((container['items'] as unknown[])[path] as JsonObject);
    const rewired = rewireService(svc, pods, namespaceOf(svc), slot.where);
    const changed = !deepEqual(rewired, svc);
    if (path === undefined) slot.after = rewired;
    else (container['items'] as unknown[])[path] = rewired;
    reports.push({ object: describe(svc), status: changed ? 'service-rewired' : 'passed-through' });
  }
  return reports;
}

/** Changes only what differs; a fresh rendering when the edit cannot be made in place. */
function editDocument(doc: Document, slot: Slot): void {
  try {
    applyToDocument(doc, diff(slot.before, slot.after));
    if (deepEqual(doc.toJS({ maxAliasCount: MAX_ALIASES }), slot.after)) return;
  } catch {
    // e.g. the path runs through an alias: fall through to a fresh rendering.
  }
  doc.contents = doc.createNode(slot.after) as typeof doc.contents;
}

