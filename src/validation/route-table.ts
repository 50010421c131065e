/**
 * Method + path -> operation, for the routes of an API description. OpenAPI
 * path templates: "{name}" matches one segment or part of one
 * ("/files/{name}.{ext}"). Concrete paths win over templated ones (OpenAPI
 * 3.x "Path Templating Matching"); among templates, more literal characters
 * win. Routes are bucketed by their first segment, so a lookup tests only
 * the templates that can match.
 */

export interface RouteMatchResult<T> {
  readonly value: T;
  readonly params: Record<string, string>;
}

interface Entry<T> {
  readonly template: string;
  readonly regex: RegExp;
  readonly names: readonly string[];
  readonly score: number;
  readonly value: T;
}

const PARAM = /\{([^{}/]+)\}/g;

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export class TemplateError extends Error {}

function compile(template: string): { regex: RegExp; names: string[]; score: number; literal: boolean } {
  if (!template.startsWith('/')) throw new TemplateError(`path "${template}" must start with "/"`);
  const names: string[] = [];
  let re = '^';
  let score = 0;
  const segments = template === '/' ? [''] : template.replace(/\/+$/, '').split('/').slice(1);
  for (const seg of segments) {
    re += '/';
    let last = 0;
    for (const m of seg.matchAll(PARAM)) {
      const lit = seg.slice(last, m.index);
      if (/[{}]/.test(lit)) throw new TemplateError(`path "${template}": unbalanced braces in segment "${seg}"`);
      re += escapeRe(lit);
      score += lit.length;
      const name = m[1] as string;
      if (names.includes(name)) throw new TemplateError(`path "${template}": parameter {${name}} appears twice`);
      names.push(name);
      re += '([^/]+?)';
      last = (m.index as number) + m[0].length;
    }
    const tail = seg.slice(last);
    if (/[{}]/.test(tail)) throw new TemplateError(`path "${template}": unbalanced braces in segment "${seg}"`);
    re += escapeRe(tail);
    score += tail.length + 1;
  }
  re += '/?$';
  return { regex: new RegExp(re), names, score, literal: names.length === 0 };
}

function firstSegment(path: string): string {
  const i = path.indexOf('/', 1);
  return i === -1 ? path.slice(1) : path.slice(1, i);
}

export class RouteTable<T> {
  /** Concrete paths: method -> path -> value. */
  readonly #exact = new Map<string, Map<string, T>>();
  /** Templated paths: method -> first segment (or "" when it is templated) -> entries, best first. */
  readonly #templated = new Map<string, Map<string, Entry<T>[]>>();
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Adds a route; returns false if the same method and template are already present. */
  add(method: string, template: string, value: T): boolean {
    const c = compile(template);
    const normalized = template.length > 1 ? template.replace(/\/+$/, '') : template;
    if (c.literal) {
      let m = this.#exact.get(method);
      if (!m) this.#exact.set(method, (m = new Map()));
      if (m.has(normalized)) return false;
      m.set(normalized, value);
    } else {
      let m = this.#templated.get(method);
      if (!m) this.#templated.set(method, (m = new Map()));
      const first = firstSegment(normalized);
      const key = first.includes('{') ? '' : first;
      let list = m.get(key);
      if (!list) m.set(key, (list = []));
      if (list.some((e) => e.template === normalized)) return false;
      list.push({ template: normalized, regex: c.regex, names: c.names, score: c.score, value });
      list.sort((a, b) => b.score - a.score);
    }
    this.#size++;
    return true;
  }

  match(method: string, path: string): RouteMatchResult<T> | null {
    const p = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
    const exact = this.#exact.get(method)?.get(p);
    if (exact !== undefined) return { value: exact, params: {} };
    const byFirst = this.#templated.get(method);
    if (!byFirst) return null;
    const first = firstSegment(p);
    return this.#scan(byFirst.get(first), p) ?? this.#scan(byFirst.get(''), p);
  }

  /** True when some method has a route for this path (so a miss means "method not declared"). */
  hasPath(path: string): boolean {
    for (const m of new Set([...this.#exact.keys(), ...this.#templated.keys()])) if (this.match(m, path)) return true;
    return false;
  }

  #scan(list: Entry<T>[] | undefined, path: string): RouteMatchResult<T> | null {
    if (!list) return null;
    for (const e of list) {
      const m = e.regex.exec(path);
      if (!m) continue;
      const params: Record<string, string> = {};
      for (let i = 0; i < e.names.length; i++) params[e.names[i] as string] = m[i + 1] as string;
      return { value: e.value, params };
    }
    return null;
  }
}
