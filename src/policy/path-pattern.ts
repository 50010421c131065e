/**
 * Path templates used everywhere in the policy:
 *   /orders/{id}      `{name}` captures exactly one non-empty segment
 *   /files/*          `*` matches exactly one segment, not captured
 *   /admin/**         `**` (last segment only) matches zero or more segments
 * Patterns match the *normalized* path (http/normalize-path.ts), so encoded
 * tricks are resolved before matching. A trailing slash on the request is
 * ignored for matching ("/admin/" is "/admin"), because most upstream
 * frameworks treat them alike and a deny rule must not be side-stepped by one.
 *
 * Compiled once at policy load into a RegExp; matching is a single exec().
 */

export interface PathPattern {
  readonly source: string;
  /** Returns captured params, or null when the path does not match. */
  match(path: string): Record<string, string> | null;
}

const PARAM = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/;

export class PathPatternError extends Error {}

export function compilePathPattern(source: string, options: { caseInsensitive?: boolean } = {}): PathPattern {
  if (!source.startsWith('/')) throw new PathPatternError(`path pattern "${source}" must start with "/"`);
  const segments = source === '/' ? [] : source.replace(/\/+$/, '').split('/').slice(1);
  const names: string[] = [];
  let re = '^';
  segments.forEach((seg, i) => {
    if (seg === '**') {
      if (i !== segments.length - 1) throw new PathPatternError(`path pattern "${source}": "**" is only allowed as the last segment`);
      re += '(?:/.*)?';
      return;
    }
    if (seg === '*') {
      re += '/[^/]+';
      return;
    }
    const m = PARAM.exec(seg);
    if (m) {
      const name = m[1] as string;
      if (names.includes(name)) throw new PathPatternError(`path pattern "${source}": parameter {${name}} appears twice`);
      names.push(name);
      re += '/([^/]+)';
      return;
    }
    if (seg === '' || /[{}*]/.test(seg)) throw new PathPatternError(`path pattern "${source}": segment "${seg}" is not a literal, {param}, * or **`);
    re += '/' + seg.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  });
  re += '/?$';
  const regex = new RegExp(re, options.caseInsensitive ? 'i' : '');
  const empty = Object.freeze({}) as Record<string, string>;
  return {
    source,
    match(path: string) {
      const m = regex.exec(path);
      if (!m) return null;
      if (names.length === 0) return empty;
      const params: Record<string, string> = {};
      for (let i = 0; i < names.length; i++) params[names[i] as string] = m[i + 1] as string;
      return params;
    },
  };
}

/** Number of literal characters: used to rank templates, most specific first. */
export function specificity(source: string): number {
  let score = 0;
  for (const seg of source.split('/')) {
    if (seg === '**') score -= 1000;
    else if (seg === '*' || PARAM.test(seg)) score += 1;
    else score += 100 + seg.length;
  }
  return score;
}
