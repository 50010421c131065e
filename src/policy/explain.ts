/**
 * `policy explain` (and `policy test`): which stage and rule decide a sample
 * request, and why, including what audit (dry-run) mode would let through.
 * The same compiled stages as the sidecar: authorization with tracing on,
 * each stage's explain(), and for validation the stage's own run on the
 * sample's headers and body, so limits and schemas are judged exactly as the
 * sidecar would. Authentication takes the sample identity as established (a
 * sample has no token to verify).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { compileAuthorization } from '../authz/evaluate.ts';
import { PalisadeError, type Code } from '../errors/codes.ts';
import { SINGLETON_HEADERS } from '../http/ambiguity.ts';
import { normalizePath } from '../http/normalize-path.ts';
import { enforces } from '../pipeline/runner.ts';
import type { Deny, ExplainRequest, Identity, RequestContext, Stage, StageName, WouldDeny } from '../pipeline/types.ts';
import type { CompiledPolicy } from './compiled.ts';

export interface ExplainInput {
  readonly method: string;
  /** The request target: path, optionally with ?query. */
  readonly path: string;
  readonly host: string;
  readonly identity: Identity | null;
  /** Client IP, for the block list. */
  readonly clientIp?: string | null;
  /**
   * Request headers, for the request-level header checks (duplicates, method
   * and path overrides), limits and header schemas. As name/value pairs in the
   * order sent (a name may come twice), or as an object.
   */
  readonly headers?: Readonly<Record<string, string>> | readonly (readonly [string, string])[];
  /** Request body, for content type, size, JSON limits and the body schema. */
  readonly body?: Buffer | null;
}

export interface ExplainResult {
  readonly policy: { readonly name: string; readonly version: string; readonly hash: string };
  readonly method: string;
  readonly path: string;
  readonly normalizedFrom: string | null;
  readonly verdict: 'allow' | 'deny';
  readonly code: Code | null;
  readonly rule: string | null;
  readonly stage: StageName | 'request' | null;
  /** Why the deciding stage refused, in operator terms (the deny's reason: an operator tool shows it). */
  readonly detail: string | null;
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
  claims?: string | Record<string, unknown> | undefined;
  clientId?: string | undefined;
}): Identity | null {
  const spiffeId = f.spiffeId ?? (f.identity?.startsWith('spiffe://') ? f.identity : undefined);
  const subject = f.subject ?? (f.identity && !f.identity.startsWith('spiffe://') ? f.identity : undefined);
  if (!spiffeId && !subject && !f.claims) return null;
  let claims: Record<string, unknown> = {};
  if (typeof f.claims === 'object') claims = f.claims;
  else if (f.claims) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(f.claims);
    } catch {
      parsed = null;
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new PalisadeError('CONFIG_INVALID', `--claims must be a JSON object, got ${JSON.stringify(f.claims.slice(0, 40))}; write e.g. --claims '{"tenant":"acme"}'`);
    claims = parsed as Record<string, unknown>;
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

/**
 * The sample's headers as Node presents a request's: the raw lines, and the
 * folded object (the first of a singleton, others joined with ", ").
 */
function sampleHeaders(input: ExplainInput): { raw: string[]; headers: IncomingHttpHeaders } {
  const pairs: (readonly [string, string])[] = Array.isArray(input.headers) ? [...(input.headers as readonly (readonly [string, string])[])] : Object.entries(input.headers ?? {});
  if (!pairs.some(([k]) => k.toLowerCase() === 'host')) pairs.unshift(['host', input.host]);
  const raw: string[] = [];
  const headers: IncomingHttpHeaders = {};
  const singletons = new Set<string>(SINGLETON_HEADERS);
  for (const [name, value] of pairs) {
    raw.push(name, value);
    const k = name.toLowerCase();
    const prev = headers[k];
    if (prev === undefined) headers[k] = value;
    else if (!singletons.has(k)) headers[k] = `${String(prev)}, ${value}`;
  }
  return { raw, headers };
}

/** A request context for the validation stage's own run on a sample: nothing is forwarded. */
function sampleContext(policy: CompiledPolicy, input: ExplainInput, headers: IncomingHttpHeaders, path: string, query: string, identity: Identity | null): RequestContext {
  const body = input.body ?? null;
  if (body !== null && headers['content-length'] === undefined && headers['transfer-encoding'] === undefined) headers['content-length'] = String(body.length);
  return {
    id: 'explain',
    traceId: null,
    start: process.hrtime.bigint(),
    receivedAt: Date.now(),
    method: input.method,
    path,
    query,
    host: input.host,
    headers,
    clientIp: input.clientIp ?? '127.0.0.1',
    clientPort: 0,
    serverIp: '127.0.0.1',
    serverPort: 0,
    tls: null,
    policy,
    identity,
    route: policy.routeOf(input.method, path),
    bytesIn: 0,
    body: null,
    bodyStream: body !== null ? Readable.from([body]) : null,
    responseTap: null,
    timings: [],
    wouldDeny: [],
    allowRule: null,
    responseHeaders: null,
  };
}

/**
 * Runs the validation stage itself on the sample. A body it streams (rather
 * than reads whole) is checked as it is consumed, so it is consumed here.
 */
async function runValidation(stage: Stage, ctx: RequestContext): Promise<{ deny: Deny | null; wouldDeny: WouldDeny[] }> {
  const original = ctx.bodyStream;
  let verdict = await stage.run(ctx);
  if (verdict.kind === 'continue' && ctx.body === null && ctx.bodyStream !== null && ctx.bodyStream !== original) {
    try {
      for await (const _chunk of ctx.bodyStream) void _chunk;
    } catch (err) {
      const e = err as PalisadeError & { rule?: string | null };
      if (e instanceof PalisadeError) verdict = { kind: 'deny', code: e.code, rule: e.rule ?? null, reason: e.message };
      else throw err;
    }
  }
  return { deny: verdict.kind === 'deny' ? verdict : null, wouldDeny: ctx.wouldDeny };
}

export async function explainRequest(policy: CompiledPolicy, input: ExplainInput): Promise<ExplainResult> {
  const trace: string[] = [];
  const meta = { name: policy.name, version: policy.version, hash: policy.hash };
  const np = normalizePath(input.path, { allowMatrixParams: policy.allowMatrixParams });
  if (!np.ok) {
    return { policy: meta, method: input.method, path: input.path, normalizedFrom: null, verdict: 'deny', code: 'PATH_INVALID', rule: null, stage: 'request', detail: np.reason, route: null, wouldDeny: [], trace: [`path rejected: ${np.reason}`] };
  }
  // One reading of the request, as the sidecar makes before any stage: duplicates, method and path overrides.
  const { raw, headers } = sampleHeaders(input);
  const hv = policy.checkHeaders(input.method, raw, headers);
  if (!hv.ok) {
    return { policy: meta, method: input.method, path: np.path, normalizedFrom: null, verdict: 'deny', code: hv.code, rule: null, stage: 'request', detail: hv.reason, route: null, wouldDeny: [], trace: [`request refused before any stage: ${hv.code} (${hv.reason})`] };
  }
  if (hv.method !== null) {
    trace.push(`method override applied (spec.headers.methodOverride: apply): ${input.method} is judged and forwarded as ${hv.method}`);
    input = { ...input, method: hv.method };
  }
  const route = policy.routeOf(input.method, np.path);
  trace.push(route ? `route template ${route.template}` : 'no route template of the policy matches');
  if (policy.auditAll) trace.push('policy mode is audit: denies are recorded as would_deny and allowed');
  const target = input.path.split('?')[0];
  const normalizedFrom = np.path !== target ? target ?? null : null;
  let identity = input.identity;
  const base = { policy: meta, method: input.method, path: np.path, normalizedFrom, route: route?.template ?? null };
  const wouldDeny: WouldDeny[] = [];
  let allowRule: string | null = null;
  // Every stage in pipeline order; the first enforced deny decides, as in the sidecar.
  for (const stage of policy.stages) {
    let denied: { code: Code; rule: string | null; audit: boolean; detail: string | null } | null = null;
    const req: ExplainRequest = { method: input.method, path: np.path, host: input.host, identity, clientIp: input.clientIp ?? null };
    if (stage.name === 'authz') {
      const authz = compileAuthorization(policy.document.spec.authorization);
      const r = authz.evaluate({ method: input.method, path: np.path, host: input.host, identity }, true);
      trace.push(...r.trace);
      if (r.allow) allowRule = r.rule;
      else denied = { code: r.code ?? 'AUTHZ_NO_MATCHING_RULE', rule: r.rule, audit: r.audit, detail: r.trace[r.trace.length - 1] ?? null };
    } else if (stage.name === 'validation') {
      const e = stage.explain?.(req);
      for (const line of e?.trace ?? []) trace.push(`validation: ${line}`);
      const ctx = sampleContext(policy, input, headers, np.path, np.query, identity);
      const hasBody = ctx.bodyStream !== null;
      const r = await runValidation(stage, ctx);
      for (const w of r.wouldDeny) {
        trace.push(`validation: audit mode: ${w.code} is not enforced`);
        wouldDeny.push(w);
      }
      if (r.deny) {
        const why = r.deny.reason ?? r.deny.detail ?? null;
        trace.push(`validation: refused: ${r.deny.code}${why ? ` (${why})` : ''}`);
        denied = { code: r.deny.code, rule: r.deny.rule, audit: r.deny.audit === true, detail: why };
      } else trace.push(`validation: the request passes the limits and schemas${hasBody ? '' : ' (no body given: --body FILE)'}`);
    } else if (stage.explain) {
      const e = stage.explain(req);
      for (const line of e.trace) trace.push(`${stage.name}: ${line}`);
      if (e.identity !== undefined) identity = e.identity;
      if (e.deny) denied = { code: e.deny.code, rule: e.deny.rule, audit: e.deny.audit === true, detail: e.deny.reason ?? e.deny.detail ?? null };
    }
    if (!denied) continue;
    // The runner's own rule for what is enforced and what is dry-run (rule, stage or whole policy in audit).
    if (!enforces(policy, stage.name, denied)) {
      trace.push(`audit mode: ${denied.code} at ${stage.name} is not enforced`);
      wouldDeny.push({ stage: stage.name, code: denied.code, rule: denied.rule });
      continue;
    }
    return { ...base, verdict: 'deny', code: denied.code, rule: denied.rule, stage: stage.name, detail: denied.detail, wouldDeny, trace };
  }
  return { ...base, verdict: 'allow', code: null, rule: allowRule, stage: null, detail: null, wouldDeny, trace };
}
