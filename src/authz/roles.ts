/**
 * Role bindings: which roles an identity holds. Compiled once per policy into
 * predicates; evaluated once per identity.
 */
import type { Identity } from '../pipeline/types.ts';
import type { AuthorizationSpec, SubjectMatcher } from '../policy/document.ts';
import { claimAt } from './claims.ts';

type Predicate = (id: Identity) => boolean;

function compileMatcher(m: SubjectMatcher): Predicate {
  if ('spiffeId' in m) {
    const want = m.spiffeId;
    if (want.endsWith('/*')) {
      const prefix = want.slice(0, -1);
      return (id) => id.spiffeId !== null && id.spiffeId.startsWith(prefix);
    }
    return (id) => id.spiffeId === want;
  }
  if ('subject' in m) return (id) => id.subject === m.subject;
  if ('scope' in m) return (id) => id.scopes.includes(m.scope);
  if ('group' in m) return (id) => id.groups.includes(m.group);
  if ('clientId' in m) return (id) => id.clientId === m.clientId;
  const { name, equals, includes } = m.claim;
  if (equals !== undefined) return (id) => claimAt(id.claims, name) === equals;
  return (id) => {
    const v = claimAt(id.claims, name);
    if (Array.isArray(v)) return v.includes(includes);
    if (typeof v === 'string' && typeof includes === 'string') return v.split(' ').includes(includes);
    return false;
  };
}

export interface RoleResolver {
  /** Roles the identity holds, in policy order. */
  rolesOf(identity: Identity | null): ReadonlySet<string>;
}

const NONE: ReadonlySet<string> = new Set();

export function compileRoles(spec: AuthorizationSpec): RoleResolver {
  const roles = spec.roles.map((r) => ({ name: r.name, preds: r.subjects.map(compileMatcher) }));
  // Roles are a function of the identity alone, and identities are frozen and made once per
  // verified token or peer (authn/identity.ts): one set per identity and policy, not per request.
  const held = new WeakMap<Identity, ReadonlySet<string>>();
  return {
    rolesOf(identity) {
      if (!identity || roles.length === 0) return NONE;
      let set = held.get(identity);
      if (set === undefined) {
        const names = new Set<string>();
        for (const r of roles) if (r.preds.some((p) => p(identity))) names.add(r.name);
        set = names;
        held.set(identity, set);
      }
      return set;
    },
  };
}
