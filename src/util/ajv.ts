/**
 * One ajv configuration for every schema Palisade compiles (policy, settings,
 * API schemas): all errors at once so a user sees every problem in one go,
 * defaults filled in, formats checked, strict mode so a typo in a schema is a
 * build-time error rather than a silently ignored keyword.
 */
import { Ajv, type ErrorObject, type Options } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

// ajv-formats is CommonJS; under NodeNext its default import is the module object.
const addFormats = (addFormatsModule as unknown as { default?: typeof addFormatsModule }).default ?? addFormatsModule;

export function createAjv(options: Options = {}): Ajv {
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, strictRequired: false, allowUnionTypes: true, ...options });
  (addFormats as unknown as (a: Ajv) => void)(ajv);
  return ajv;
}

/**
 * The same configuration on the JSON Schema 2020-12 dialect, for API schemas
 * (OpenAPI 3.1 is 2020-12; 3.0 schemas are converted to it). Callers relax
 * strictness for third-party documents, whose vendor keywords are legitimate.
 */
export function createAjv2020(options: Options = {}): Ajv2020 {
  const ajv = new Ajv2020({ allErrors: true, useDefaults: true, strict: true, strictRequired: false, allowUnionTypes: true, ...options });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  return ajv;
}

/** Turns ajv errors into lines that name the field, the value and the fix. */
export function describeAjvErrors(errors: readonly ErrorObject[] | null | undefined, root: string, data: unknown): string[] {
  if (!errors) return [];
  const lines: string[] = [];
  for (const e of errors) {
    const field = root + (e.instancePath || '');
    const value = valueAt(data, e.instancePath);
    const shown = value === undefined ? '' : ` (got ${preview(value)})`;
    switch (e.keyword) {
      case 'additionalProperties':
        lines.push(`${field}: unknown field "${String(e.params['additionalProperty'])}"; remove it or check its spelling`);
        break;
      case 'if':
        // The branch's own error (a missing field) is listed beside it and says more.
        break;
      case 'required':
        lines.push(`${field}: missing required field "${String(e.params['missingProperty'])}"`);
        break;
      case 'enum':
        lines.push(`${field}${shown}: must be one of ${(e.params['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`);
        break;
      default:
        lines.push(`${field}${shown}: ${e.message ?? e.keyword}`);
    }
  }
  return [...new Set(lines)];
}

function valueAt(data: unknown, pointer: string): unknown {
  if (!pointer) return data;
  let cur: unknown = data;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function preview(v: unknown): string {
  const s = JSON.stringify(v);
  if (s === undefined) return String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
