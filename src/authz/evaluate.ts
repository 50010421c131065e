/**
 * Role-based authorization over methods x path templates x hosts, with claim
 * conditions. Explicit deny rules win; no matching allow rule means deny.
 *
 * Deny rules match paths case-insensitively and allow rules case-sensitively:
 * if the upstream treats /Admin and /admin alike, a deny still catches /Admin,
 * and an allow never grants more than it names. Both fail closed.
 */
import type { Code } from '../errors/codes.ts';
import type { Identity } from '../pipeline/types.ts';
import type { AuthorizationSpec, AuthzRule, Condition } from '../policy/document.ts';
import { compilePathPattern, type PathPattern } from '../policy/path-pattern.ts';
import { claimAt } from './claims.ts';
import { compileRoles, type RoleResolver } from './roles.ts';

export interface AuthzInput {
  readonly method: string;
  readonly path: string;
  readonly host: string;
  readonly identity: Identity | null;
}

export interface AuthzResult {
  readonly allow: boolean;
  readonly code: Code | null;
  readonly rule: string | null;
  /** The deciding rule is in audit mode (dry-run). */
  readonly audit: boolean;
  /** Path params of the deciding rule's template. */
  readonly params: Readonly<Record<string, string>> | null;
  /** Why, step by step; only filled when asked for (policy explain). */
  readonly trace: readonly string[];
}

interface CompiledRule {
  readonly rule: AuthzRule;
  readonly methods: ReadonlySet<string> | null;
  readonly patterns: readonly PathPattern[];
  readonly hosts: readonly ((host: string) => boolean)[] | null;
  readonly roles: readonly string[] | null;
  readonly conditions: readonly ((id: Identity | null, params: Record<string, string>) => boolean)[];
}

function hostMatcher(pattern: string): (host: string) => boolean {
  const p = pattern.toLowerCase();
  if (p.startsWith('*.')) {
    const suffix = p.slice(1);
    return (h) => h.endsWith(suffix) && !h.slice(0, -suffix.length).includes('.') && h.length > suffix.length;
  }
  return (h) => h === p;
}

function compileCondition(c: Condition): (id: Identity | null, params: Record<string, string>) => boolean {
  return (id, params) => {
    if (!id) return false;
    const v = claimAt(id.claims, c.claim);
    if (c.equalsParam !== undefined) {
      const p = params[c.equalsParam];
      return p !== undefined && (typeof v === 'string' || typeof v === 'number') && String(v) === p;
    }
    if (c.equals !== undefined) return v === c.equals;
    return c.in !== undefined && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') && c.in.includes(v);
  };
}

function shown(v: unknown): string {
  if (v === undefined) return '(absent)';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/**
 * For explain only: the values a condition compared, e.g.
 * `claim tenant = globex, param tenantId = acme`, so a failed condition says
 * what differed, not just that something did.
 */
function describeCondition(c: Condition, id: Identity | null, params: Record<string, string>): string {
  if (!id) return `claim ${c.claim}: no identity`;
  const v = `claim ${c.claim} = ${shown(claimAt(id.claims, c.claim))}`;
  if (c.equalsParam !== undefined) return `${v}, param ${c.equalsParam} = ${shown(params[c.equalsParam])}`;
  if (c.equals !== undefined) return `${v}, expected ${shown(c.equals)}`;
  return `${v}, expected one of [${(c.in ?? []).map(shown).join(', ')}]`;
}

function failedConditions(r: CompiledRule, id: Identity | null, params: Record<string, string>): string {
  const conds = r.rule.when ?? [];
  return r.conditions
    .map((c, i) => (c(id, params) ? null : describeCondition(conds[i] as Condition, id, params)))
    .filter((x) => x !== null)
    .join('; ');
}

function compileRule(rule: AuthzRule): CompiledRule {
  const caseInsensitive = rule.effect === 'deny';
  const patterns = rule.paths.map((p) => compilePathPattern(p, { caseInsensitive }));
  for (const c of rule.when ?? []) {
    if (c.equalsParam !== undefined && !rule.paths.every((p) => p.includes(`{${c.equalsParam}}`))) {
      throw new Error(`authorization rule "${rule.id}": condition on claim "${c.claim}" uses equalsParam "${c.equalsParam}", but not every path of the rule has {${c.equalsParam}}; add the parameter to each path or split the rule`);
    }
  }
  return {
    rule,
    methods: rule.methods.includes('*') ? null : new Set(rule.methods),
    patterns,
    hosts: rule.hosts && rule.hosts.length > 0 ? rule.hosts.map(hostMatcher) : null,
    roles: rule.roles && rule.roles.length > 0 ? rule.roles : null,
    conditions: (rule.when ?? []).map(compileCondition),
  };
}

function hostOnly(host: string): string {
  // Strip the port; IPv6 literals keep their brackets.
  const h = host.toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  const i = h.lastIndexOf(':');
  return i === -1 ? h : h.slice(0, i);
}

export interface Authorizer {
  evaluate(input: AuthzInput, explain?: boolean): AuthzResult;
  /** Every path template the rules name (for the route table). */
  readonly templates: readonly { template: string; methods: readonly string[] }[];
}

const NO_TRACE: readonly string[] = Object.freeze([]);

export function compileAuthorization(spec: AuthorizationSpec): Authorizer {
  const roleNames = new Set(spec.roles.map((r) => r.name));
  for (const r of spec.rules) {
    for (const role of r.roles ?? []) {
      if (!roleNames.has(role)) {
        throw new Error(`authorization rule "${r.id}" names role "${role}", which spec.authorization.roles does not define; define it or fix the name (known: ${[...roleNames].join(', ') || 'none'})`);
      }
    }
    if (r.effect === 'allow' && !r.public && !r.authenticated && !(r.roles && r.roles.length > 0)) {
      throw new Error(`authorization rule "${r.id}" allows nobody: give it roles, or set authenticated: true or public: true`);
    }
  }
  const ids = new Set<string>();
  for (const r of spec.rules) {
    if (ids.has(r.id)) throw new Error(`authorization rule id "${r.id}" is used twice; rule ids must be unique`);
    ids.add(r.id);
  }
  const resolver: RoleResolver = compileRoles(spec);
  const denies = spec.rules.filter((r) => r.effect === 'deny').map(compileRule);
  const allows = spec.rules.filter((r) => r.effect === 'allow').map(compileRule);

  function routeMatch(r: CompiledRule, method: string, path: string, host: string): Record<string, string> | null {
    if (r.methods && !r.methods.has(method)) return null;
    if (r.hosts && !r.hosts.some((h) => h(host))) return null;
    for (const p of r.patterns) {
      const params = p.match(path);
      if (params) return params;
    }
    return null;
  }

  return {
    templates: spec.rules.flatMap((r) => r.paths.map((template) => ({ template, methods: r.methods }))),
    evaluate(input, explain = false) {
      // Only an explanation writes a trace: a request gets the shared empty one.
      const trace: string[] = explain ? [] : (NO_TRACE as string[]);
      const host = hostOnly(input.host);
      const id = input.identity;
      const roles = resolver.rolesOf(id);
      if (explain) trace.push(`identity ${id ? `"${id.subject}"` : '(none)'} holds roles [${[...roles].join(', ')}]`);
      for (const r of denies) {
        const params = routeMatch(r, input.method, input.path, host);
        if (!params) continue;
        const who = r.roles === null || r.roles.some((x) => roles.has(x));
        const cond = r.conditions.every((c) => c(id, params));
        if (who && cond) {
          if (explain) trace.push(`deny rule "${r.rule.id}" matches ${input.method} ${input.path}${r.rule.audit ? ' (audit: would deny)' : ''}`);
          return { allow: false, code: 'AUTHZ_DENY_RULE', rule: r.rule.id, audit: r.rule.audit, params, trace };
        }
        if (explain) trace.push(`deny rule "${r.rule.id}" matches the route but not this identity${who ? ` (${failedConditions(r, id, params)})` : ''}`);
      }
      let failed: { code: Code; rule: string; audit: boolean; params: Record<string, string> } | null = null;
      for (const r of allows) {
        const params = routeMatch(r, input.method, input.path, host);
        if (!params) continue;
        const who = r.rule.public || (id !== null && (r.rule.authenticated || (r.roles !== null && r.roles.some((x) => roles.has(x)))));
        if (!who) {
          if (explain) trace.push(`allow rule "${r.rule.id}" matches the route but needs ${r.roles ? `one of roles [${r.roles.join(', ')}]` : 'an authenticated identity'}`);
          failed ??= { code: 'AUTHZ_NO_MATCHING_RULE', rule: r.rule.id, audit: r.rule.audit, params };
          continue;
        }
        if (!r.conditions.every((c) => c(id, params))) {
          if (explain) trace.push(`allow rule "${r.rule.id}" matches but its conditions do not hold: ${failedConditions(r, id, params)}`);
          if (failed === null || failed.code !== 'AUTHZ_CONDITION_FAILED') failed = { code: 'AUTHZ_CONDITION_FAILED', rule: r.rule.id, audit: r.rule.audit, params };
          continue;
        }
        if (explain) trace.push(`allow rule "${r.rule.id}" allows ${input.method} ${input.path}`);
        return { allow: true, code: null, rule: r.rule.id, audit: false, params, trace };
      }
      if (failed) return { allow: false, code: failed.code, rule: failed.rule, audit: failed.audit, params: failed.params, trace };
      if (explain) trace.push('no rule matches: default deny');
      return { allow: false, code: 'AUTHZ_NO_MATCHING_RULE', rule: null, audit: false, params: null, trace };
    },
  };
}
