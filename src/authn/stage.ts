/**
 * The authn stage: finds the route's requirement, checks the credentials it
 * names (mTLS peer, JWT, introspection), and sets ctx.identity for the stages
 * after it (rate limits, authorization, token-level blocks). A public route
 * ("none") continues with the mTLS identity when there is one, else null.
 *
 * Everything is prepared at policy load; no network I/O happens until a
 * request needs keys or an introspection answer. A cached token is judged
 * synchronously.
 */
import { CODES, type Code } from '../errors/codes.ts';
import { CONTINUE, deny, type Deny, type Identity, type RequestContext, type Stage, type StageExplanation, type Verdict, type StageBuilder } from '../pipeline/types.ts';
import type { AuthnMethod } from '../policy/document.ts';
import { canonicalJson } from '../util/freeze.ts';
import { authenticationProblems, introspectionClientConfig, secretWarning } from './config.ts';
import { buildIdentity, peerIdentity } from './identity.ts';
import { createIntrospector, type Introspector } from './introspection/cache.ts';
import { createJwtVerifier, type JwtVerifier } from './jwt/verify.ts';
import { compileMtls, type MtlsChecker, type PeerFacts } from './mtls.ts';
import { compileRequirements, type Requirement } from './requirements.ts';
import { failure, isNotOurs, type AuthnFailure, type TokenFacts, type TokenOutcome } from './result.ts';
import { authnServices, type AuthnServices } from './services.ts';
import { compileTokenSource, type TokenReader } from './token-source.ts';

/** What one method found: nothing to check, a credential that passed, or one that failed. */
type Attempt = { readonly kind: 'absent' } | { readonly kind: 'ok'; readonly token: TokenFacts | null } | { readonly kind: 'failed'; readonly failure: AuthnFailure; readonly token: string | null };

const ABSENT: Attempt = Object.freeze({ kind: 'absent' });
const PEER_OK: Attempt = Object.freeze({ kind: 'ok', token: null });

function attemptOf(o: TokenOutcome, token: string): Attempt {
  return o.ok ? { kind: 'ok', token: o } : { kind: 'failed', failure: o, token };
}

export const buildAuthnStage: StageBuilder = (doc, cc) => {
  const spec = doc.spec.authentication;
  const problems = authenticationProblems(spec);
  if (problems.length > 0) throw new Error(problems.length === 1 ? (problems[0] as string) : `\n  - ${problems.join('\n  - ')}`);
  const svc: AuthnServices = authnServices(cc.services);

  const mtls = compileMtls(spec.mtls);
  const requirementOf = compileRequirements(spec.requirements, spec.defaultRequire);
  const jwtSource: TokenReader = compileTokenSource(spec.jwt.tokenSource);
  let jwt: JwtVerifier | null = null;
  if (spec.jwt.issuers.length > 0) {
    svc.tokens.resize(spec.jwt.cacheMaxEntries);
    jwt = createJwtVerifier(spec.jwt.issuers, canonicalJson(spec.jwt), svc);
  }
  let introspector: Introspector | null = null;
  let introSource: TokenReader | null = null;
  if (spec.introspection) {
    const client = introspectionClientConfig(spec.introspection, cc.baseDir);
    const warning = secretWarning(client);
    if (warning) svc.logger.warn(warning);
    introspector = createIntrospector(spec.introspection, client, canonicalJson(spec.introspection), svc);
    introSource = compileTokenSource(spec.introspection.tokenSource);
  }

  const realm = spec.realm;
  const challenge = `Bearer realm="${realm}"`;
  // The failure's reason goes to the decision event only; the client gets the code and title
  // (and RFC 6750's challenge, whose error_description is the title too).
  function denyWith(req: Requirement, f: AuthnFailure): Deny {
    const spec401 = CODES[f.code].status === 401;
    if (!spec401 || !req.bearer) return deny(f.code, req.id, { reason: f.reason });
    // RFC 6750 3.1: no error attribute when no token was sent.
    const header = f.code === 'AUTHN_REQUIRED' || f.code === 'AUTHN_PEER_REQUIRED' ? challenge : `${challenge}, error="invalid_token", error_description="${CODES[f.code].title}"`;
    return deny(f.code, req.id, { reason: f.reason, headers: { 'www-authenticate': header } });
  }

  // The checks as stage-level functions: two closures made per request before.
  const verifyJwt = (t: string) => (jwt as JwtVerifier).verify(t);
  const introspect = (t: string) => (introspector as Introspector).introspect(t);

  function tokenAttempt(read: TokenReader, check: (token: string) => TokenOutcome | Promise<TokenOutcome>, ctx: RequestContext): Attempt | Promise<Attempt> {
    const r = read(ctx.headers);
    if (r.kind === 'absent') return ABSENT;
    if (r.kind === 'malformed') return { kind: 'failed', failure: failure('AUTHN_TOKEN_MALFORMED', r.reason), token: null };
    const token = r.token;
    const out = check(token);
    return out instanceof Promise ? out.then((o) => attemptOf(o, token)) : attemptOf(out, token);
  }

  function attempt(method: AuthnMethod, ctx: RequestContext, peer: PeerFacts | AuthnFailure | null): Attempt | Promise<Attempt> {
    if (method === 'mtls') {
      if (peer === null) return ABSENT;
      return peer.ok ? PEER_OK : { kind: 'failed', failure: peer, token: null };
    }
    if (method === 'jwt') return tokenAttempt(jwtSource, verifyJwt, ctx);
    return tokenAttempt(introSource as TokenReader, introspect, ctx);
  }

  /** Per-request progress through the requirement's methods. */
  interface Progress {
    readonly ctx: RequestContext;
    readonly req: Requirement;
    /** The peer check: facts, a refusal (not in the accepted trust domains...), or null (no certificate). */
    readonly peerCheck: PeerFacts | AuthnFailure | null;
    /** The peer when accepted: it joins the identity even if the route does not require it. */
    readonly peer: PeerFacts | null;
    readonly tokens: TokenFacts[];
    readonly failures: AuthnFailure[];
    /** Tokens already judged definitively (anyOf does not ask a second method about them). */
    readonly judged: string[];
  }

  function succeed(p: Progress): Verdict {
    // Token-level blocks (jti, subject) are the block list's second check, which runs right after this stage on ctx.identity.
    p.ctx.identity = buildIdentity(p.peer, p.tokens);
    return CONTINUE;
  }

  function fail(p: Progress, f: AuthnFailure): Verdict {
    // The verified peer (if any) stays on record: who sent the bad credential is what detection needs.
    p.ctx.identity = p.peer ? peerIdentity(p.peer) : null;
    return denyWith(p.req, f);
  }

  const PEER_MISSING = failure('AUTHN_PEER_REQUIRED', 'this route requires a client certificate');
  const CREDENTIAL_MISSING = failure('AUTHN_REQUIRED', 'this route requires a credential');

  /** Applies one attempt; returns a final verdict, or null to go on. */
  function apply(p: Progress, method: AuthnMethod, a: Attempt): Verdict | null {
    if (p.req.mode === 'all') {
      if (a.kind === 'absent') return fail(p, method === 'mtls' ? PEER_MISSING : CREDENTIAL_MISSING);
      if (a.kind === 'failed') return fail(p, a.failure);
      if (a.token) p.tokens.push(a.token);
      return null;
    }
    if (a.kind === 'ok') {
      if (a.token) p.tokens.push(a.token);
      return succeed(p);
    }
    if (a.kind === 'failed') {
      p.failures.push(a.failure);
      if (a.token !== null && !isNotOurs(a.failure.code)) p.judged.push(a.token);
    }
    return null;
  }

  function finish(p: Progress): Verdict {
    if (p.req.mode === 'all') return succeed(p);
    // anyOf: the most telling failure (a definitive one before "not a JWT" / "unknown issuer"), else "missing".
    const f = p.failures.find((x) => !isNotOurs(x.code)) ?? p.failures[0];
    if (f) return fail(p, f);
    return fail(p, p.req.methods.every((m) => m === 'mtls') ? PEER_MISSING : CREDENTIAL_MISSING);
  }

  function alreadyJudged(p: Progress, method: AuthnMethod): boolean {
    const r = (method === 'jwt' ? jwtSource : (introSource as TokenReader))(p.ctx.headers);
    return r.kind === 'token' && p.judged.includes(r.token);
  }

  function step(p: Progress, from: number): Verdict | Promise<Verdict> {
    const methods = p.req.methods;
    for (let i = from; i < methods.length; i++) {
      const method = methods[i] as AuthnMethod;
      if (p.req.mode === 'any' && method !== 'mtls' && p.judged.length > 0 && alreadyJudged(p, method)) continue;
      const a = attempt(method, p.ctx, p.peerCheck);
      if (a instanceof Promise) return a.then((res) => apply(p, method, res) ?? step(p, i + 1));
      const v = apply(p, method, a);
      if (v) return v;
    }
    return finish(p);
  }

  const stage: Stage = {
    name: 'authn',
    run(ctx) {
      const req = requirementOf(ctx.method, ctx.path);
      const peerCheck = mtls.check(ctx.tls?.peer ?? null);
      const peer = peerCheck !== null && peerCheck.ok ? peerCheck : null;
      if (req.mode === 'none') {
        ctx.identity = peer ? peerIdentity(peer) : null;
        return CONTINUE;
      }
      return step({ ctx, req, peerCheck, peer, tokens: [], failures: [], judged: [] }, 0);
    },
    explain(sample) {
      return explainRequirement(requirementOf(sample.method, sample.path), sample.identity, sample.tokenFailure ?? null, mtls, denyWith);
    },
  };
  return stage;
};

function describeRequirement(r: Requirement): string {
  if (r.mode === 'none') return 'none (public)';
  if (r.methods.length === 1) return r.methods[0] as string;
  return `${r.mode === 'any' ? 'anyOf' : 'allOf'} [${r.methods.join(', ')}]`;
}

/**
 * `policy explain`: which requirement applies and whether the sample identity
 * meets it. Explain has no token: a sample identity with jwt (or
 * introspection) among its methods stands for a token that verified; the
 * mTLS rules (trust domains, SPIFFE IDs) are applied to its SPIFFE ID.
 */
function explainRequirement(r: Requirement, id: Identity | null, tokenFailure: Code | null, mtls: MtlsChecker, denyWith: (r: Requirement, f: AuthnFailure) => Deny): StageExplanation {
  const trace = [r.id ? `requirement "${r.id}" applies: ${describeRequirement(r)}` : `no requirement matches; the default applies: ${describeRequirement(r)}`];
  const token = id !== null && (id.methods.includes('jwt') || id.methods.includes('introspection'));
  const peer = id !== null && (id.methods.includes('mtls') || id.spiffeId !== null) ? mtls.judge(id.spiffeId, id.subject) : null;
  // As the sidecar does: a token is read only when the route asks for one, so
  // its claims reach the later stages only then; the accepted peer always does.
  const peerOnly: Identity | null = peer?.ok ? { subject: peer.principal, methods: ['mtls'], spiffeId: peer.spiffeId, issuer: null, clientId: null, scopes: [], groups: [], claims: {}, tokenId: null, expiresAt: null } : null;
  if (r.mode === 'none') {
    trace.push('no credential needed');
    return { trace, deny: null, identity: peerOnly };
  }
  if (token) trace.push('the sample identity carries a token; explain takes it as verified (it has no token to check)');
  else if (tokenFailure) trace.push(`a token was presented and refused: ${tokenFailure}`);
  if (peer) trace.push(peer.ok ? `mTLS peer ${peer.principal} is accepted` : `mTLS peer refused: ${peer.reason}`);
  const tokenOutcome: 'ok' | 'absent' | AuthnFailure = token ? 'ok' : tokenFailure ? failure(tokenFailure, CODES[tokenFailure].title) : 'absent';
  const outcome = (m: AuthnMethod): 'ok' | 'absent' | AuthnFailure => (m === 'mtls' ? (peer === null ? 'absent' : peer.ok ? 'ok' : peer) : tokenOutcome);
  const missing = (m: AuthnMethod) => (m === 'mtls' ? failure('AUTHN_PEER_REQUIRED', 'this route requires a client certificate') : failure('AUTHN_REQUIRED', 'this route requires a credential'));
  let f: AuthnFailure | null = null;
  if (r.mode === 'all') {
    for (const m of r.methods) {
      const o = outcome(m);
      if (o === 'ok') continue;
      f = o === 'absent' ? missing(m) : o;
      break;
    }
  } else {
    const results = r.methods.map(outcome);
    if (!results.includes('ok')) {
      const refused = results.find((o): o is AuthnFailure => typeof o === 'object');
      f = refused ?? (r.methods.every((m) => m === 'mtls') ? missing('mtls') : missing('jwt'));
    }
  }
  trace.push(f ? `refused: ${f.code} (${f.reason})` : 'requirement met');
  const usesToken = r.methods.some((m) => m !== 'mtls');
  return { trace, deny: f ? denyWith(r, f) : null, identity: f ? peerOnly : usesToken ? id : peerOnly };
}
