/**
 * Our JSON Schemas against the official OCSF 1.8.0 data: every attribute we
 * declare exists in the class or object it sits in (after extends and
 * profiles), is not deprecated, has the OCSF type, array-ness, range and
 * pattern; every *_id enum is exactly the OCSF enum (a const is a member of
 * it); every attribute OCSF requires is required; every at_least_one
 * constraint is enforced; profile attributes only with the profile declared.
 * And the validator of events (ocsf-source.ts checkEvent) is shown to catch
 * what it claims to catch.
 */
import { describe, expect, it } from 'vitest';
import { toOcsfHttpActivity } from '../../../src/decision/ocsf/http-activity.ts';
import { readSchema, validateOcsf, type OcsfSchemaName } from '../../../src/decision/ocsf/validate.ts';
import { checkEvent, loadOcsf, type OcsfShape } from './ocsf-source.ts';
import { jwtAllowRecord } from './records.ts';

type Node = Record<string, unknown>;

const ocsf = loadOcsf();
const docs: Record<string, Node> = {
  'objects.json': readSchema('objects'),
  'http-activity.json': readSchema('http-activity'),
  'detection-finding.json': readSchema('detection-finding'),
  'authentication.json': readSchema('authentication'),
};

interface Flat {
  /** Each property can be constrained in several places ($ref target and local overrides). */
  readonly props: Map<string, { node: Node; doc: string }[]>;
  readonly required: Set<string>;
  readonly anyOf: Node[];
  readonly type: unknown;
  readonly values: unknown[] | null;
  readonly isEnum: boolean;
  readonly items: { node: Node; doc: string } | null;
  readonly minimum: number | undefined;
  readonly maximum: number | undefined;
  readonly maxLength: number | undefined;
  readonly pattern: string | undefined;
}

function deref(ds: Record<string, Node>, ref: string, doc: string): { node: Node; doc: string } {
  const [file, pointer] = ref.split('#') as [string, string];
  const d = file ? file : doc;
  let cur: unknown = ds[d];
  if (cur === undefined) throw new Error(`unknown schema ${d}`);
  for (const k of pointer.split('/').slice(1)) cur = (cur as Node)[k];
  if (!cur) throw new Error(`dangling $ref ${ref} in ${doc}`);
  return { node: cur as Node, doc: d };
}

function flat(ds: Record<string, Node>, node: Node, doc: string): Flat {
  const base: Flat | null = typeof node['$ref'] === 'string' ? (() => { const t = deref(ds, node['$ref'] as string, doc); return flat(ds, t.node, t.doc); })() : null;
  const props = new Map(base?.props ?? []);
  for (const [k, v] of Object.entries((node['properties'] ?? {}) as Record<string, Node>)) props.set(k, [...(props.get(k) ?? []), { node: v, doc }]);
  const values = node['enum'] !== undefined ? (node['enum'] as unknown[]) : node['const'] !== undefined ? [node['const']] : (base?.values ?? null);
  return {
    props,
    required: new Set([...(base?.required ?? []), ...((node['required'] ?? []) as string[])]),
    anyOf: [...(base?.anyOf ?? []), ...((node['anyOf'] ?? []) as Node[])],
    type: node['type'] ?? base?.type,
    values,
    isEnum: node['enum'] !== undefined || (node['const'] === undefined && (base?.isEnum ?? false)),
    items: node['items'] ? { node: node['items'] as Node, doc } : (base?.items ?? null),
    minimum: (node['minimum'] as number | undefined) ?? base?.minimum,
    maximum: (node['maximum'] as number | undefined) ?? base?.maximum,
    maxLength: (node['maxLength'] as number | undefined) ?? base?.maxLength,
    pattern: (node['pattern'] as string | undefined) ?? base?.pattern,
  };
}

const JSON_TYPE: Record<string, string> = { string_t: 'string', integer_t: 'integer', long_t: 'integer', float_t: 'number', boolean_t: 'boolean' };

function typeOfValue(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** Walks a schema node that stands for an OCSF class or object; returns problems. */
function compare(ds: Record<string, Node>, shape: OcsfShape, f: Flat, at: string, declaredProfiles: ReadonlySet<string>, problems: string[], seen: Set<string>): void {
  for (const [key, variants] of f.props) {
    const path = `${at}.${key}`;
    if (at === shape.name && key === 'unmapped') continue; // free-form by definition: ours
    const attr = shape.attributes.get(key);
    if (!attr) {
      problems.push(`${path}: not an OCSF attribute of ${shape.name}`);
      continue;
    }
    if (attr.deprecated) problems.push(`${path}: deprecated in OCSF`);
    if (attr.profile && !declaredProfiles.has(attr.profile)) problems.push(`${path}: profile ${attr.profile} not declared by this event`);
    const flats = variants.map((v) => flat(ds, v.node, v.doc));
    for (const pf of flats) {
      let vf = pf;
      if (attr.isArray) {
        if (pf.type !== undefined && pf.type !== 'array') problems.push(`${path}: OCSF array, schema type ${String(pf.type)}`);
        if (pf.type === 'array') {
          if (!pf.items) {
            // A local overlay (contains, maxItems) over a $ref that has the items is fine.
            if (!flats.some((x) => x.items)) problems.push(`${path}: array without items`);
            continue;
          }
          vf = flat(ds, pf.items.node, pf.items.doc);
        } else continue; // a local override without type (adds constraints only)
      } else if (pf.type === 'array') problems.push(`${path}: OCSF scalar/object, schema array`);
      if (attr.type === 'object') continue;
      if (ocsf.isObjectType(attr.type)) {
        if (vf.type !== undefined && vf.type !== 'object') problems.push(`${path}: OCSF object ${attr.type}, schema type ${String(vf.type)}`);
        const key2 = `${attr.type}@${JSON.stringify([...vf.props.keys()])}@${[...vf.required].join()}`;
        if (vf.type === 'object' && !seen.has(key2)) {
          seen.add(key2);
          compare(ds, ocsf.obj(attr.type), vf, `${path}`, declaredProfiles, problems, seen);
        }
        continue;
      }
      const t = ocsf.scalar(attr.type);
      const expected = t.base === 'json_t' ? null : JSON_TYPE[t.base];
      if (expected) {
        if (vf.type !== undefined && vf.type !== expected && !(expected === 'number' && vf.type === 'integer')) problems.push(`${path}: OCSF ${attr.type} (${expected}), schema type ${String(vf.type)}`);
        if (vf.type === undefined && !vf.values) problems.push(`${path}: schema gives no type`);
        for (const val of vf.values ?? []) {
          const vt = typeOfValue(val);
          if (vt !== expected && !(expected === 'number' && vt === 'integer')) problems.push(`${path}: value ${JSON.stringify(val)} is not ${expected}`);
        }
      }
      if (attr.enum && vf.values) {
        for (const val of vf.values) if (!attr.enum.has(String(val))) problems.push(`${path}: ${JSON.stringify(val)} is not in the OCSF enum`);
        if (key.endsWith('_id') && vf.isEnum) {
          const ours = new Set(vf.values.map(String));
          const theirs = new Set(attr.enum.keys());
          if (ours.size !== theirs.size || [...theirs].some((x) => !ours.has(x))) problems.push(`${path}: enum [${[...ours].join(',')}] is not the OCSF enum [${[...theirs].join(',')}]`);
        }
      }
      if (attr.name.endsWith('_id') && attr.enum && !vf.values) problems.push(`${path}: *_id without enum or const`);
      if (t.range && !vf.values) {
        if (vf.minimum === undefined || vf.minimum < t.range[0] || vf.maximum === undefined || vf.maximum > t.range[1]) problems.push(`${path}: ${attr.type} range ${t.range.join('..')} not enforced`);
      }
      if (t.maxLen !== null && (vf.maxLength === undefined || vf.maxLength > t.maxLen)) problems.push(`${path}: ${attr.type} max length ${t.maxLen} not enforced`);
      if (t.regex && vf.pattern !== t.regex.source) problems.push(`${path}: ${attr.type} pattern is not OCSF's`);
    }
  }
  for (const attr of shape.attributes.values()) {
    if (attr.requirement !== 'required') continue;
    if (attr.profile && !declaredProfiles.has(attr.profile)) continue;
    if (!f.required.has(attr.name)) problems.push(`${at}.${attr.name}: required by OCSF, not by the schema`);
  }
  for (const group of shape.atLeastOne) {
    if (group.some((g) => f.required.has(g))) continue;
    const enforced = f.anyOf.length > 0 && f.anyOf.every((b) => ((b['required'] ?? []) as string[]).some((r) => group.includes(r)));
    if (!enforced) problems.push(`${at}: at_least_one [${group.join(', ')}] not enforced`);
  }
}

function schemaProblems(ds: Record<string, Node>, doc: string, className: string, profiles: readonly string[]): string[] {
  const problems: string[] = [];
  compare(ds, ocsf.cls(className), flat(ds, ds[doc] as Node, doc), className, new Set(profiles), problems, new Set());
  return problems;
}

const CLASSES: [OcsfSchemaName, string, string[]][] = [
  ['http-activity', 'http_activity', ['security_control', 'host', 'trace']],
  ['detection-finding', 'detection_finding', []],
  ['authentication', 'authentication', []],
];

describe('our JSON Schemas against the official OCSF 1.8.0 definition', () => {
  it.each(CLASSES)('%s matches OCSF class %s: attributes, types, enums, requirements, constraints', (schemaName, className, profiles) => {
    const doc = `${schemaName}.json`;
    const cls = ocsf.cls(className);
    expect(schemaProblems(docs, doc, className, profiles)).toEqual([]);
    // Generated per class by OCSF: ids and captions of the class itself.
    const props = (docs[doc] as Node)['properties'] as Record<string, Node>;
    expect(props['class_uid']).toEqual({ const: cls.uid });
    expect(props['class_name']).toEqual({ const: cls.caption });
    expect(props['category_uid']).toEqual({ const: cls.categoryUid });
    expect(props['category_name']).toEqual({ const: cls.categoryCaption });
    expect(new Set(props['type_uid']?.['enum'] as number[])).toEqual(new Set([...(cls.attributes.get('type_uid')?.enum?.keys() ?? [])].map(Number)));
  });

  it('the comparison itself finds a wrong enum, a lost requirement, a made-up attribute, a wrong type and a lost constraint', () => {
    const ds = structuredClone(docs);
    const defs = (ds['objects.json'] as Node)['$defs'] as Record<string, Node>;
    const http = ds['http-activity.json'] as Node;
    const props = http['properties'] as Record<string, Node>;
    (props['disposition_id'] as Node)['enum'] = ((props['disposition_id'] as Node)['enum'] as number[]).filter((x) => x !== 27);
    (defs['http_response'] as Node)['required'] = [];
    ((defs['http_request'] as Node)['properties'] as Record<string, Node>)['cookie'] = { type: 'string' };
    ((defs['url'] as Node)['properties'] as Record<string, Node>)['port'] = { type: 'string' };
    delete (defs['url'] as Node)['anyOf'];
    props['actor'] = { type: 'array', items: { $ref: 'objects.json#/$defs/actor' } };
    const found = schemaProblems(ds, 'http-activity.json', 'http_activity', ['security_control', 'host', 'trace']).join('\n');
    expect(found).toMatch(/disposition_id: enum .* is not the OCSF enum/);
    expect(found).toMatch(/http_response\.code: required by OCSF, not by the schema/);
    expect(found).toMatch(/http_request\.cookie: not an OCSF attribute of http_request/);
    expect(found).toMatch(/url\.port: OCSF port_t \(integer\), schema type string/);
    expect(found).toMatch(/url: at_least_one \[url_string, path\] not enforced/);
    expect(found).toMatch(/actor: OCSF scalar\/object, schema array/);
    expect(schemaProblems(ds, 'http-activity.json', 'http_activity', ['security_control', 'trace']).join('\n')).toMatch(/actor: profile host not declared/);
  });

  it('the profiles the schemas allow are OCSF profiles', () => {
    const allowed = ((((docs['objects.json'] as Node)['$defs'] as Node)['metadata'] as Node)['properties'] as Record<string, Node>)['profiles']?.['items'] as Node;
    for (const p of allowed['enum'] as string[]) expect(ocsf.profileNames.has(p), p).toBe(true);
  });

  it('refuses profile attributes whose profile is not declared (security_control, host, trace)', () => {
    const event = JSON.parse(JSON.stringify(toOcsfHttpActivity(jwtAllowRecord()))) as { metadata: { profiles: string[] } };
    expect(event.metadata.profiles).toEqual(['security_control', 'host', 'trace']);
    expect(validateOcsf('http-activity', event).valid).toBe(true);
    for (const p of ['security_control', 'host', 'trace']) {
      const e = structuredClone(event);
      e.metadata.profiles = e.metadata.profiles.filter((x) => x !== p);
      expect(validateOcsf('http-activity', e).valid, `without ${p}`).toBe(false);
      expect(checkEvent(ocsf, 'http_activity', e as unknown as Record<string, unknown>).some((x) => x.includes(`profile "${p}"`)) || p === 'security_control').toBe(true);
    }
    const cloud = structuredClone(event);
    cloud.metadata.profiles.push('cloud');
    expect(validateOcsf('http-activity', cloud).valid).toBe(false);
  });
});

describe('the OCSF event checker catches what it claims to', () => {
  const good = () => JSON.parse(JSON.stringify(toOcsfHttpActivity(jwtAllowRecord()))) as Record<string, any>;

  it('passes a good event', () => {
    expect(checkEvent(ocsf, 'http_activity', good())).toEqual([]);
  });

  it.each<[string, (e: Record<string, any>) => void, RegExp]>([
    ['unknown attribute', (e) => (e['http_request'].cookie = 'x'), /http_request\.cookie: not an attribute of http_request/],
    ['deprecated attribute', (e) => (e['http_status'] = 200), /http_status: deprecated/],
    ['caption does not match its id', (e) => (e['disposition'] = 'Allowed!'), /disposition: "Allowed!" is not the caption of disposition_id=1/],
    ['id outside the enum', (e) => (e['disposition_id'] = 42), /disposition_id: 42 is not in the OCSF enum/],
    ['wrong type', (e) => (e['time'] = String(e['time'])), /time: must be an integer/],
    ['not an IP', (e) => (e['src_endpoint'].ip = 'ten.one.four'), /src_endpoint\.ip: "ten\.one\.four" does not match the ip_t pattern/],
    ['port out of range', (e) => (e['src_endpoint'].port = 70000), /src_endpoint\.port: 70000 outside 0\.\.65535/],
    ['missing required attribute', (e) => delete e['http_response'].code, /http_response\.code: required by http_response/],
    ['missing nested required attribute', (e) => delete e['tls'].certificate.serial_number, /tls\.certificate\.serial_number: required by certificate/],
    ['at_least_one violated', (e) => { delete e['http_request'].url.path; delete e['http_request'].url.url_string; }, /http_request\.url: needs at least one of url_string, path/],
    ['wrong type_uid', (e) => (e['type_uid'] = 400299), /type_uid 400299 != class_uid\*100\+activity_id/],
    ['unknown observable type', (e) => (e['observables'][0].type_id = 28), /observables\[0\]\.type_id: 28 is not in the OCSF enum/],
    ['null instead of omitted', (e) => (e['trace'] = null), /trace: null/],
  ])('%s', (_name, mutate, problem) => {
    const e = good();
    mutate(e);
    expect(checkEvent(ocsf, 'http_activity', e).join('\n')).toMatch(problem);
  });
});
