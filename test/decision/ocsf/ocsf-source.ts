/**
 * Reads the official OCSF schema source (test/fixtures/ocsf-1.8.0, vendored: dictionary,
 * events, objects, profiles) and compiles a class or object the way the OCSF
 * schema server does: follow `extends` to the root, splice in `$include`d
 * profiles (their attributes carry the profile's name), merge each attribute
 * over its dictionary definition (enums are unions, the class wins on
 * conflicts). Tests use it to check emitted events and our JSON Schemas
 * against the published definition instead of against our reading of it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

type Raw = Record<string, unknown>;

export interface OcsfAttribute {
  readonly name: string;
  readonly caption: string;
  /** A scalar type (`string_t`, `ip_t`, ...) or an object name (`network_endpoint`). */
  readonly type: string;
  readonly isArray: boolean;
  readonly requirement: 'required' | 'recommended' | 'optional';
  /** Enum value (as a string key) -> caption, or null. */
  readonly enum: ReadonlyMap<string, string> | null;
  /** The profile that brings this attribute, or null when it always exists. */
  readonly profile: string | null;
  readonly sibling: string | null;
  readonly deprecated: boolean;
}

export interface OcsfShape {
  readonly name: string;
  readonly caption: string;
  readonly attributes: ReadonlyMap<string, OcsfAttribute>;
  /** The most derived at_least_one constraint along the extends chain (empty or one group). */
  readonly atLeastOne: readonly (readonly string[])[];
  readonly justOne: readonly (readonly string[])[];
}

export interface OcsfClass extends OcsfShape {
  readonly uid: number;
  readonly categoryUid: number;
  readonly categoryCaption: string;
}

export interface OcsfScalarType {
  readonly name: string;
  /** The primitive at the end of the type chain: string_t, integer_t, long_t, float_t, boolean_t, json_t. */
  readonly base: string;
  readonly regex: RegExp | null;
  readonly maxLen: number | null;
  readonly range: readonly [number, number] | null;
  readonly caption: string;
}

export interface OcsfSource {
  readonly root: string;
  readonly version: string;
  readonly profileNames: ReadonlySet<string>;
  cls(name: string): OcsfClass;
  obj(name: string): OcsfShape;
  isObjectType(type: string): boolean;
  scalar(type: string): OcsfScalarType;
  /** observable.type_id values generated from types, attributes and objects, with captions. */
  readonly observableTypes: ReadonlyMap<number, string>;
}

export function ocsfRoot(): string {
  // Vendored in the repository (test/fixtures/ocsf-1.8.0, Apache-2.0, see its SOURCE.md): the tests read nothing outside the checkout.
  return resolve(import.meta.dirname, '..', '..', 'fixtures', 'ocsf-1.8.0');
}

function readJson(path: string): Raw {
  return JSON.parse(readFileSync(path, 'utf8')) as Raw;
}

function isObj(v: unknown): v is Raw {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Later wins; objects merge key by key (so enums become unions); null overrides. */
function merge(base: unknown, over: unknown): unknown {
  if (!isObj(base) || !isObj(over)) return over === undefined ? base : over;
  const out: Raw = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = merge(base[k], v);
  return out;
}

function walk(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith('.json')) out.push(p);
  }
  return out;
}

export function loadOcsf(root = ocsfRoot()): OcsfSource {
  if (!existsSync(join(root, 'dictionary.json'))) {
    throw new Error(
      `The official OCSF 1.8.0 schema data is missing at ${root}. It is vendored in the repository as test/fixtures/ocsf-1.8.0 (dictionary.json, events/, objects/, profiles/); restore it from git.`,
    );
  }
  const version = String(readJson(join(root, 'version.json'))['version']);
  const dictionary = readJson(join(root, 'dictionary.json'));
  const dictAttrs = dictionary['attributes'] as Record<string, Raw>;
  const types = (dictionary['types'] as Raw)['attributes'] as Record<string, Raw>;
  const categories = readJson(join(root, 'categories.json'))['attributes'] as Record<string, Raw>;

  const eventFiles = new Map<string, Raw>();
  for (const f of walk(join(root, 'events'))) {
    const j = readJson(f);
    eventFiles.set(String(j['name']), j);
  }
  const objectFiles = new Map<string, Raw>();
  for (const f of walk(join(root, 'objects'))) {
    const j = readJson(f);
    objectFiles.set(String(j['name']), j);
  }
  const profileNames = new Set(readdirSync(join(root, 'profiles')).map((f) => f.replace(/\.json$/, '')));

  /** A file's attributes with its $include'd profiles spliced in (the file wins). */
  function ownAttributes(file: Raw): Record<string, Raw> {
    const attrs = (file['attributes'] ?? {}) as Record<string, unknown>;
    let acc: Record<string, Raw> = {};
    for (const inc of (attrs['$include'] ?? []) as string[]) {
      const included = readJson(join(root, inc));
      const profile = included['meta'] === 'profile' ? String(included['name']) : null;
      for (const [k, v] of Object.entries((included['attributes'] ?? {}) as Record<string, Raw>)) {
        acc[k] = merge(acc[k], profile ? { ...v, profile } : v) as Raw;
      }
    }
    for (const [k, v] of Object.entries(attrs)) {
      if (k === '$include') continue;
      acc[k] = merge(acc[k], v) as Raw;
    }
    return acc;
  }

  function chain(files: Map<string, Raw>, name: string, kind: string): Raw[] {
    const out: Raw[] = [];
    let cur: string | undefined = name;
    while (cur) {
      const f = files.get(cur);
      if (!f) throw new Error(`OCSF ${kind} "${cur}" not found under ${root}`);
      out.unshift(f);
      cur = f['extends'] as string | undefined;
    }
    return out;
  }

  function compile(files: Raw[]): { attributes: Map<string, OcsfAttribute>; atLeastOne: string[][]; justOne: string[][]; caption: string } {
    let merged: Record<string, Raw> = {};
    const atLeastOne: string[][] = [];
    const justOne: string[][] = [];
    for (const f of files) {
      for (const [k, v] of Object.entries(ownAttributes(f))) merged[k] = merge(merged[k], v) as Raw;
      // A constraint of a subclass replaces its parent's (network_endpoint widens _entity's name/uid to ip, svc_name, ...).
      const c = f['constraints'] as Raw | undefined;
      if (c?.['at_least_one']) atLeastOne.splice(0, atLeastOne.length, c['at_least_one'] as string[]);
      if (c?.['just_one']) justOne.splice(0, justOne.length, c['just_one'] as string[]);
    }
    const attributes = new Map<string, OcsfAttribute>();
    for (const [name, local] of Object.entries(merged)) {
      const dict = dictAttrs[name];
      if (!dict) throw new Error(`attribute "${name}" is not in the OCSF dictionary`);
      const def = merge(dict, local) as Raw;
      const en = def['enum'] as Record<string, Raw> | undefined;
      attributes.set(name, {
        name,
        caption: String(def['caption'] ?? name),
        type: String(def['type']),
        isArray: def['is_array'] === true,
        requirement: (def['requirement'] as OcsfAttribute['requirement']) ?? 'optional',
        enum: en ? new Map(Object.entries(en).map(([k, v]) => [k, String(v['caption'])])) : null,
        profile: (def['profile'] as string | null | undefined) ?? null,
        sibling: (def['sibling'] as string | undefined) ?? null,
        deprecated: def['@deprecated'] !== undefined,
      });
    }
    const leaf = files[files.length - 1] as Raw;
    return { attributes, atLeastOne, justOne, caption: String(leaf['caption']) };
  }

  const observableTypes = new Map<number, string>([
    [0, 'Unknown'],
    [99, 'Other'],
  ]);
  for (const t of Object.values(types)) if (typeof t['observable'] === 'number') observableTypes.set(t['observable'], String(t['caption']));
  for (const a of Object.values(dictAttrs)) if (typeof a['observable'] === 'number') observableTypes.set(a['observable'], String(a['caption']));
  for (const o of objectFiles.values()) {
    if (typeof o['observable'] === 'number') observableTypes.set(o['observable'], String(o['caption']));
    for (const [k, v] of Object.entries((o['attributes'] ?? {}) as Record<string, unknown>)) {
      // Captions of attribute-level observables are generated by the schema server; we only know the id exists.
      if (isObj(v) && typeof v['observable'] === 'number') observableTypes.set(v['observable'], `${String(o['caption'])}: ${dictAttrs[k]?.['caption'] ?? k}`);
    }
  }

  const classCache = new Map<string, OcsfClass>();
  const objectCache = new Map<string, OcsfShape>();

  return {
    root,
    version,
    profileNames,
    observableTypes,
    cls(name) {
      const hit = classCache.get(name);
      if (hit) return hit;
      const files = chain(eventFiles, name, 'class');
      const c = compile(files);
      const category = [...files].reverse().find((f) => f['category'])?.['category'] as string;
      const cat = categories[category];
      if (!cat) throw new Error(`category ${category} of ${name} not in categories.json`);
      const leaf = files[files.length - 1] as Raw;
      const categoryUid = Number(cat['uid']);
      const uid = categoryUid * 1000 + Number(leaf['uid']);
      // class_uid, category_uid and type_uid enums are generated per class by the schema server.
      const attrs = c.attributes;
      const gen = (k: string, entries: [string, string][]) => attrs.set(k, { ...(attrs.get(k) as OcsfAttribute), enum: new Map(entries) });
      gen('class_uid', [[String(uid), c.caption]]);
      gen('category_uid', [[String(categoryUid), String(cat['caption'])]]);
      gen('type_uid', [...(attrs.get('activity_id')?.enum ?? new Map<string, string>())].map(([k, v]) => [String(uid * 100 + Number(k)), `${c.caption}: ${v}`]));
      const out: OcsfClass = { name, ...c, uid, categoryUid, categoryCaption: String(cat['caption']) };
      classCache.set(name, out);
      return out;
    },
    obj(name) {
      const hit = objectCache.get(name);
      if (hit) return hit;
      const c = compile(chain(objectFiles, name, 'object'));
      const shape: OcsfShape = { name, ...c };
      if (name === 'observable') {
        // observable.type_id is generated: every type, attribute and object marked `observable`.
        const t = shape.attributes.get('type_id') as OcsfAttribute;
        (shape.attributes as Map<string, OcsfAttribute>).set('type_id', { ...t, enum: new Map([...observableTypes].map(([k, v]) => [String(k), v])) });
      }
      objectCache.set(name, shape);
      return shape;
    },
    isObjectType(type) {
      return objectFiles.has(type);
    },
    scalar(type) {
      const t = types[type];
      if (!t) throw new Error(`OCSF type ${type} unknown`);
      let base = type;
      let regex: RegExp | null = null;
      let maxLen: number | null = null;
      let range: [number, number] | null = null;
      for (let cur: Raw | undefined = t; cur; ) {
        if (!regex && typeof cur['regex'] === 'string') regex = new RegExp(cur['regex']);
        if (maxLen === null && typeof cur['max_len'] === 'number') maxLen = cur['max_len'];
        if (!range && Array.isArray(cur['range'])) range = cur['range'] as [number, number];
        const next = cur['type'] as string | undefined;
        if (!next) break;
        base = next;
        cur = types[next];
      }
      return { name: type, base, regex, maxLen, range, caption: String(t['caption']) };
    },
  };
}

/**
 * Checks one event against the compiled class: every attribute exists (and
 * is not deprecated), its profile is declared in metadata.profiles, types,
 * ranges, regexes and enums hold, enum captions match their siblings,
 * required attributes and at_least_one / just_one constraints are met, at
 * every depth. `unmapped` is free-form by definition. Returns the problems.
 */
export function checkEvent(src: OcsfSource, className: string, event: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const meta = event['metadata'] as Raw | undefined;
  const declared = new Set(Array.isArray(meta?.['profiles']) ? (meta['profiles'] as string[]) : []);
  for (const p of declared) if (!src.profileNames.has(p)) problems.push(`metadata.profiles: "${p}" is not an OCSF profile`);
  const cls = src.cls(className);
  if (event['class_uid'] !== cls.uid) problems.push(`class_uid ${String(event['class_uid'])} != ${cls.uid}`);
  if (event['category_uid'] !== cls.categoryUid) problems.push(`category_uid ${String(event['category_uid'])} != ${cls.categoryUid}`);
  if (event['class_name'] !== undefined && event['class_name'] !== cls.caption) problems.push(`class_name "${String(event['class_name'])}" != "${cls.caption}"`);
  if (event['category_name'] !== undefined && event['category_name'] !== cls.categoryCaption) problems.push(`category_name != ${cls.categoryCaption}`);
  const activity = Number(event['activity_id']);
  if (event['type_uid'] !== cls.uid * 100 + activity) problems.push(`type_uid ${String(event['type_uid'])} != class_uid*100+activity_id`);
  const activityCaption = cls.attributes.get('activity_id')?.enum?.get(String(activity));
  if (event['type_name'] !== undefined && activity !== 99 && event['type_name'] !== `${cls.caption}: ${activityCaption}`) problems.push(`type_name "${String(event['type_name'])}"`);
  checkShape(src, cls, event, '', declared, problems);
  return problems;
}

function checkShape(src: OcsfSource, shape: OcsfShape, value: Raw, at: string, declared: ReadonlySet<string>, problems: string[]): void {
  for (const [k, v] of Object.entries(value)) {
    const path = at ? `${at}.${k}` : k;
    const attr = shape.attributes.get(k);
    if (!attr) {
      problems.push(`${path}: not an attribute of ${shape.name}`);
      continue;
    }
    if (attr.deprecated) problems.push(`${path}: deprecated in OCSF ${src.version}`);
    if (attr.profile && !declared.has(attr.profile)) problems.push(`${path}: belongs to profile "${attr.profile}", which metadata.profiles does not declare`);
    if (v === null || v === undefined) {
      problems.push(`${path}: null (omit absent attributes instead)`);
      continue;
    }
    if (attr.isArray) {
      if (!Array.isArray(v)) problems.push(`${path}: must be an array of ${attr.type}`);
      else v.forEach((item, i) => checkValue(src, attr, item, `${path}[${i}]`, declared, problems));
    } else {
      checkValue(src, attr, v, path, declared, problems);
    }
    if (attr.enum && attr.sibling && value[attr.sibling] !== undefined && String(v) !== '99') {
      const caption = attr.enum.get(String(v));
      if (value[attr.sibling] !== caption) problems.push(`${at ? `${at}.` : ''}${attr.sibling}: "${String(value[attr.sibling])}" is not the caption of ${k}=${String(v)} ("${caption}")`);
    }
  }
  for (const attr of shape.attributes.values()) {
    if (attr.requirement !== 'required' || value[attr.name] !== undefined) continue;
    if (attr.profile && !declared.has(attr.profile)) continue;
    problems.push(`${at ? `${at}.` : ''}${attr.name}: required by ${shape.name}`);
  }
  for (const group of shape.atLeastOne) {
    if (!group.some((g) => value[g] !== undefined)) problems.push(`${at || shape.name}: needs at least one of ${group.join(', ')}`);
  }
  for (const group of shape.justOne) {
    if (group.filter((g) => value[g] !== undefined).length !== 1) problems.push(`${at || shape.name}: needs exactly one of ${group.join(', ')}`);
  }
}

function checkValue(src: OcsfSource, attr: OcsfAttribute, v: unknown, path: string, declared: ReadonlySet<string>, problems: string[]): void {
  if (attr.type === 'object') {
    if (!isObj(v)) problems.push(`${path}: must be an object`);
    return; // free-form (unmapped)
  }
  if (src.isObjectType(attr.type)) {
    if (!isObj(v)) {
      problems.push(`${path}: must be a ${attr.type} object`);
      return;
    }
    checkShape(src, src.obj(attr.type), v, path, declared, problems);
    return;
  }
  const t = src.scalar(attr.type);
  switch (t.base) {
    case 'string_t':
      if (typeof v !== 'string') problems.push(`${path}: must be a string (${attr.type})`);
      else {
        if (t.regex && !t.regex.test(v)) problems.push(`${path}: "${v}" does not match the ${attr.type} pattern`);
        if (t.maxLen !== null && v.length > t.maxLen) problems.push(`${path}: longer than ${t.maxLen}`);
      }
      break;
    case 'integer_t':
    case 'long_t':
      if (typeof v !== 'number' || !Number.isInteger(v)) problems.push(`${path}: must be an integer (${attr.type}), got ${JSON.stringify(v)}`);
      else if (t.range && (v < t.range[0] || v > t.range[1])) problems.push(`${path}: ${v} outside ${t.range.join('..')}`);
      break;
    case 'float_t':
      if (typeof v !== 'number') problems.push(`${path}: must be a number`);
      break;
    case 'boolean_t':
      if (typeof v !== 'boolean') problems.push(`${path}: must be a boolean`);
      break;
    case 'json_t':
      break;
    default:
      problems.push(`${path}: unhandled OCSF base type ${t.base}`);
  }
  if (attr.enum && !attr.enum.has(String(v))) problems.push(`${path}: ${JSON.stringify(v)} is not in the OCSF enum (${[...attr.enum.keys()].join(', ')})`);
}
