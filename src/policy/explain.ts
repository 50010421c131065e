/**
 * `policy explain`: shows which rule decides a sample request and why,
 * including what audit (dry-run) mode would let through. Uses the same
 * compiled authorization as the sidecar, with tracing on.
 */
import { PalisadeError, type Code } from '../errors/codes.ts';
import { compileAuthorization } from '../authz/evaluate.ts';
import { normalizePath } from '../http/normalize-path.ts';
import type { ExplainRequest, Identity, StageName, WouldDeny } from '../pipeline/types.ts';
import type { CompiledPolicy } from './compiled.ts';

export interface ExplainInput {
  readonly method: string;
  readonly path: string;
  readonly host: string;
  readonly identity: Identity | null;
  /** Client IP, for the block list. */
  readonly clientIp?: string | null;
}

export interface ExplainResult {
  readonly method: string;
  readonly path: string;
  readonly normalizedFrom: string | null;
  readonly verdict: 'allow' | 'deny';
  readonly code: Code | null;
  readonly rule: string | null;
  readonly stage: StageName | 'request' | null;
  readonly route: string | null;
  readonly wouldDeny: readonly WouldDeny[];
  readonly trace: readonly string[];
}

export function identityFromFlags(f: {
  identity?: string | undefined;
  spiffeId?: string | undefined;
  subject?: string | undefined;
  issuer?: string | undefined;
  scopes?: string[] | undefined;
  groups?: string[] | undefined;
  claims?: string | undefined;
  clientId?: string | undefined;
}): Identity | null {
  const spiffeId = f.spiffeId ?? (f.identity?.startsWith('spiffe://') ? f.identity : undefined);
  const subject = f.subject ?? (f.identity && !f.identity.startsWith('spiffe://') ? f.identity : undefined);
  if (!spiffeId && !subject && !f.claims) return null;
  let claims: Record<string, unknown> = {};
  if (f.claims) {
    try {
      claims = JSON.parse(f.claims) as Record<string, unknown>;
    } catch {
      throw new PalisadeError('CONFIG_INVALID', `--claims must be a JSON object, got ${JSON.stringify(f.claims.slice(0, 40))}`);
    }
  }
  const methods: ('mtls' | 'jwt')[] = [];
  if (spiffeId) methods.push('mtls');
  if (subject || f.claims) methods.push('jwt');
  const scopeClaim = typeof claims['scope'] === 'string' ? (claims['scope'] as string).split(' ') : [];
  return {
    subject: subject ?? (typeof claims['sub'] === 'string' ? (claims['sub'] as string) : spiffeId ?? ''),
    methods,
    spiffeId: spiffeId ?? null,
    issuer: f.issuer ?? (typeof claims['iss'] === 'string' ? (claims['iss'] as string) : null),
    clientId: f.clientId ?? null,
    scopes: [...(f.scopes ?? []), ...scopeClaim],
    groups: [...(f.groups ?? []), ...(Array.isArray(claims['groups']) ? (claims['groups'] as string[]) : [])],
    claims,
    tokenId: null,
    expiresAt: null,
  };
}

export function explainRequest(policy: CompiledPolicy, input: ExplainInput): ExplainResult {
  const trace: string[] = [];
  const np = normalizePath(input.path, { allowMatrixParams: policy.allowMatrixParams });
  if (!np.ok) {
    return { method: input.method, path: input.path, normalizedFrom: null, verdict: 'deny', code: 'PATH_INVALID', rule: null, stage: 'request', route: null, wouldDeny: [], trace: [`path rejected: ${np.reason}`] };
  }
  const route = policy.routeOf(input.method, np.path);
  trace.push(route ? `route template ${route.template}` : 'no route template of the policy matches');
  if (policy.auditAll) trace.push('policy mode is audit: denies are recorded as would_deny and allowed');
  const normalizedFrom = np.path !== input.path.split('?')[0] ? input.path : null;
  const req: ExplainRequest = { method: input.method, path: np.path, host: input.host, identity: input.identity, clientIp: input.clientIp ?? null };
  const base = { method: input.method, path: np.path, normalizedFrom, route: route?.template ?? null };
  const wouldDeny: WouldDeny[] = [];
  let allowRule: string | null = null;
  // Every stage in pipeline order; the first enforced deny decides, as in the sidecar.
  for (const stage of policy.stages) {
    let denied: { code: Code; rule: string | null; audit: boolean } | null = null;
    if (stage.name === 'authz') {
      const authz = compileAuthorization(policy.document.spec.authorization);
      const r = authz.evaluate({ method: input.method, path: np.path, host: input.host, identity: input.identity }, true);
      trace.push(...r.trace);
      if (r.allow) allowRule = r.rule;
      else denied = { code: r.code ?? 'AUTHZ_NO_MATCHING_RULE', rule: r.rule, audit: r.audit };
    } else if (stage.explain) {
      const e = stage.explain(req);
      for (const line of e.trace) trace.push(`${stage.name}: ${line}`);
      if (e.deny) denied = { code: e.deny.code, rule: e.deny.rule, audit: e.deny.audit === true };
    }
    if (!denied) continue;
    if (denied.audit || policy.auditAll || policy.auditStages.has(stage.name)) {
      trace.push(`audit mode: ${denied.code} at ${stage.name} is not enforced`);
      wouldDeny.push({ stage: stage.name, code: denied.code, rule: denied.rule });
      continue;
    }
    return { ...base, verdict: 'deny', code: denied.code, rule: denied.rule, stage: stage.name, wouldDeny, trace };
  }
  return { ...base, verdict: 'allow', code: null, rule: allowRule, stage: null, wouldDeny, trace };
}
