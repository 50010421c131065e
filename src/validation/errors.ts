/**
 * Validation failures as the client sees them: where (a JSON pointer into
 * the request: /path/id, /query/limit, /headers/x-version, /body/items/0/qty)
 * and which rule failed, with ajv's message, which is built from the schema,
 * never from the value. At most MAX_ERRORS, each pointer cut to 200 characters.
 */
import type { ErrorObject } from 'ajv';

export interface FieldError {
  readonly pointer: string;
  readonly rule: string;
  readonly message: string;
}

export const MAX_ERRORS = 20;

function escapeToken(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

export function fieldErrors(prefix: string, errors: readonly ErrorObject[] | null | undefined, out: FieldError[] = []): FieldError[] {
  if (!errors) return out;
  const seen = new Set(out.map((e) => `${e.pointer}\n${e.rule}`));
  for (const e of errors) {
    if (out.length >= MAX_ERRORS) break;
    let pointer = prefix + e.instancePath;
    let message = e.message ?? e.keyword;
    // Point at the field itself, not at its parent object.
    if (e.keyword === 'required') {
      pointer += '/' + escapeToken(String(e.params['missingProperty']));
      message = 'is required';
    } else if (e.keyword === 'additionalProperties' || e.keyword === 'unevaluatedProperties') {
      const extra = e.params['additionalProperty'] ?? e.params['unevaluatedProperty'];
      if (extra !== undefined) pointer += '/' + escapeToken(String(extra));
      message = 'is not allowed by the schema';
    }
    if (pointer.length > 200) pointer = pointer.slice(0, 197) + '...';
    const key = `${pointer}\n${e.keyword}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ pointer, rule: e.keyword, message });
  }
  return out;
}

/** Short text for the decision record and the problem detail. */
export function summarize(errors: readonly FieldError[]): string {
  const shown = errors.slice(0, 3).map((e) => `${e.pointer} (${e.rule})`);
  return `${errors.length} field${errors.length === 1 ? '' : 's'} failed: ${shown.join(', ')}${errors.length > 3 ? ', ...' : ''}`;
}
