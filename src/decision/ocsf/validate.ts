/**
 * Validators for the events Palisade emits, compiled once from the JSON
 * Schemas in ./schema/ (draft 2020-12). For tests, for consumers that want to
 * check a stream (the Kafka tests, `palisade alerts tail`), and for anyone
 * changing the mapping: the schemas are the contract, docs/events.md
 * explains them.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

// ajv-formats is CommonJS; under NodeNext its default import is the module object.
const addFormats = (addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule;

export type OcsfSchemaName = 'http-activity' | 'detection-finding' | 'authentication';

const FILES: Record<OcsfSchemaName | 'objects', string> = {
  objects: 'ocsf-objects.schema.json',
  'http-activity': 'ocsf-http-activity.schema.json',
  'detection-finding': 'detection-finding.schema.json',
  authentication: 'authentication.schema.json',
};

export function schemaPath(name: OcsfSchemaName | 'objects'): URL {
  return new URL(`./schema/${FILES[name]}`, import.meta.url);
}

export function readSchema(name: OcsfSchemaName | 'objects'): Record<string, unknown> {
  return JSON.parse(readFileSync(schemaPath(name), 'utf8')) as Record<string, unknown>;
}

let compiled: Map<OcsfSchemaName, ValidateFunction> | null = null;

function validators(): Map<OcsfSchemaName, ValidateFunction> {
  if (compiled) return compiled;
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  ajv.addSchema(readSchema('objects'));
  const out = new Map<OcsfSchemaName, ValidateFunction>();
  for (const name of ['http-activity', 'detection-finding', 'authentication'] as const) out.set(name, ajv.compile(readSchema(name)));
  compiled = out;
  return out;
}

export interface OcsfValidation {
  readonly valid: boolean;
  /** "instancePath: message" lines, empty when valid. */
  readonly errors: readonly string[];
}

function describe(errors: readonly ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => `${e.instancePath || '/'}: ${e.message ?? e.keyword}${e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ''}`);
}

/** Validates one event (as parsed JSON) against the named schema. */
export function validateOcsf(name: OcsfSchemaName, event: unknown): OcsfValidation {
  const v = validators().get(name) as ValidateFunction;
  const valid = v(event) === true;
  return { valid, errors: valid ? [] : describe(v.errors) };
}
