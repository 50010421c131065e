/**
 * A policy ready for the request path: the frozen document, its hash, and the
 * stages built from it. Everything expensive (regexes, keys, schemas) happens
 * here, once per load, never per request.
 */
import type { AmbiguityCheck } from '../http/ambiguity.ts';
import type { PipelinePolicy, RouteMatch } from '../pipeline/types.ts';
import type { PolicyDocument } from './document.ts';
import type { PolicySignature } from './signature.ts';
import { compilePathPattern, specificity, type PathPattern } from './path-pattern.ts';

export interface CompiledPolicy extends PipelinePolicy {
  readonly document: PolicyDocument;
  /** sha256 of the canonical JSON of the validated document (hex). */
  readonly hash: string;
  readonly name: string;
  readonly version: string;
  /** Whether the file's signature was verified against a trusted key before it was applied, and which key. */
  readonly signature: PolicySignature;
  readonly allowPlaintext: boolean;
  readonly allowMatrixParams: boolean;
  /** spec.headers: duplicate singletons, method and path overrides; run before any stage. */
  readonly checkHeaders: AmbiguityCheck;
  /** Most specific route template of the policy that matches, for labels and params. */
  routeOf(method: string, path: string): RouteMatch | null;
}

interface TableEntry {
  readonly pattern: PathPattern;
  readonly methods: ReadonlySet<string> | null;
}

/** Builds the route table from every template a section declared. */
export function buildRouteTable(templates: readonly { template: string; methods?: readonly string[] }[]): (method: string, path: string) => RouteMatch | null {
  const merged = new Map<string, Set<string> | null>();
  for (const t of templates) {
    const prev = merged.get(t.template);
    const ms = t.methods && !t.methods.includes('*') ? new Set(t.methods) : null;
    if (prev === undefined) merged.set(t.template, ms);
    else if (prev === null || ms === null) merged.set(t.template, null);
    else for (const m of ms) prev.add(m);
  }
  const entries: TableEntry[] = [...merged.entries()]
    .sort((a, b) => specificity(b[0]) - specificity(a[0]))
    .map(([template, methods]) => ({ pattern: compilePathPattern(template), methods }));
  return (method, path) => {
    for (const e of entries) {
      if (e.methods && !e.methods.has(method)) continue;
      const params = e.pattern.match(path);
      if (params) return { template: e.pattern.source, params };
    }
    return null;
  };
}
