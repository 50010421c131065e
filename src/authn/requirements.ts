/**
 * Which credentials a request needs: the most specific requirement whose path
 * and method match, else the default. Paths match case-insensitively so
 * /Admin cannot fall through to a weaker default than /admin (authorization
 * still matches its allow rules case-sensitively, so this never grants more).
 */
import type { AuthnMethod, AuthnRequirement, AuthnRequirementRule } from '../policy/document.ts';
import { compilePathPattern, specificity, type PathPattern } from '../policy/path-pattern.ts';

export interface Requirement {
  /** Requirement id (recorded as the rule of a deny), null for the default. */
  readonly id: string | null;
  readonly mode: 'none' | 'any' | 'all';
  readonly methods: readonly AuthnMethod[];
  /** A token method is acceptable: 401s carry a Bearer challenge. */
  readonly bearer: boolean;
}

export function normalizeRequirement(id: string | null, r: AuthnRequirement): Requirement {
  let mode: Requirement['mode'];
  let methods: readonly AuthnMethod[];
  if (r === 'none') {
    mode = 'none';
    methods = [];
  } else if (typeof r === 'string') {
    mode = 'all';
    methods = [r];
  } else if ('anyOf' in r) {
    mode = 'any';
    methods = r.anyOf;
  } else {
    mode = 'all';
    methods = r.allOf;
  }
  return Object.freeze({ id, mode, methods: Object.freeze([...methods]), bearer: methods.some((m) => m !== 'mtls') });
}

interface Entry {
  readonly pattern: PathPattern;
  readonly methods: ReadonlySet<string> | null;
  readonly requirement: Requirement;
}

export function compileRequirements(rules: readonly AuthnRequirementRule[], fallback: AuthnRequirement): (method: string, path: string) => Requirement {
  const defaultReq = normalizeRequirement(null, fallback);
  const entries: (Entry & { score: number; order: number })[] = [];
  rules.forEach((rule, i) => {
    const requirement = normalizeRequirement(rule.id, rule.require);
    const methods = rule.methods.includes('*') ? null : new Set<string>(rule.methods);
    for (const p of rule.paths) entries.push({ pattern: compilePathPattern(p, { caseInsensitive: true }), methods, requirement, score: specificity(p), order: i });
  });
  entries.sort((a, b) => b.score - a.score || a.order - b.order);
  return (method, path) => {
    for (const e of entries) {
      if (e.methods && !e.methods.has(method)) continue;
      if (e.pattern.match(path)) return e.requirement;
    }
    return defaultReq;
  };
}
