/**
 * The request pipeline's vocabulary: a request flows through an ordered list of
 * stages; each returns a typed verdict; one runner (runner.ts) drives them and
 * the decision record is built from what they returned.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { Code } from '../errors/codes.ts';
import type { PolicyDocument } from '../policy/document.ts';
import type { Services } from './services.ts';
import type { StageName } from './stage-names.ts';

export { STAGE_NAMES, type StageName } from './stage-names.ts';

/** Who decided: a stage, or the HTTP layer before any stage ran ("request"), or the upstream. */
export type Decider = StageName | 'request' | 'upstream' | 'sidecar';

/** Facts about the mTLS peer certificate; never the certificate itself. */
export interface PeerCertificate {
  /** SPIFFE ID from the URI SAN, if any (spiffe://trust-domain/path). */
  readonly spiffeId: string | null;
  readonly subject: string;
  readonly issuer: string;
  readonly serialNumber: string;
  /** SHA-256 fingerprint, colon-separated hex as Node prints it. */
  readonly fingerprint256: string;
  readonly validFrom: string;
  readonly validTo: string;
}

export interface TlsFacts {
  readonly protocol: string | null;
  readonly cipher: string | null;
  readonly sni: string | null;
  readonly peer: PeerCertificate | null;
}

/**
 * Who the request is from, as established by the authn stage. Only facts that
 * authorization may read, never a token: decision records carry this as is so
 * `policy diff` can replay authentication requirements and authorization.
 */
export interface Identity {
  /** The principal used for keys (rate limits, block list, Kafka partitioning). */
  readonly subject: string;
  /** Which mechanisms vouched for it. */
  readonly methods: readonly ('mtls' | 'jwt' | 'introspection')[];
  readonly spiffeId: string | null;
  readonly issuer: string | null;
  readonly clientId: string | null;
  readonly scopes: readonly string[];
  readonly groups: readonly string[];
  /** JWT or introspection claims (no raw token); empty for mTLS-only. */
  readonly claims: Readonly<Record<string, unknown>>;
  /** Token id (jti), for token-level blocks. */
  readonly tokenId: string | null;
  /** Token expiry, epoch seconds. */
  readonly expiresAt: number | null;
}

export interface RouteMatch {
  /** The template that matched, e.g. /orders/{id}; bounded label for metrics. */
  readonly template: string;
  readonly params: Readonly<Record<string, string>>;
}

export interface StageTiming {
  readonly stage: StageName;
  /** Microseconds spent in the stage. */
  readonly us: number;
  readonly outcome: 'continue' | 'deny' | 'would_deny' | 'error';
}

export interface WouldDeny {
  readonly stage: StageName;
  readonly code: Code;
  readonly rule: string | null;
}

/** Per-request state shared by the stages. Created by the sidecar server. */
export interface RequestContext {
  readonly id: string;
  /** Trace id (W3C, 32 hex) if tracing is on or the client sent traceparent. */
  traceId: string | null;
  /** process.hrtime.bigint() at request start. */
  readonly start: bigint;
  readonly receivedAt: number;
  readonly method: string;
  /** Normalized path (see http/normalize-path.ts); the one matched and forwarded. */
  readonly path: string;
  /** Raw query string without '?', forwarded as is; never recorded (may hold secrets). */
  readonly query: string;
  readonly host: string;
  readonly headers: IncomingHttpHeaders;
  readonly clientIp: string;
  readonly clientPort: number;
  readonly serverIp: string;
  readonly serverPort: number;
  readonly tls: TlsFacts | null;
  readonly policy: PipelinePolicy;
  identity: Identity | null;
  route: RouteMatch | null;
  /** Bytes of request body read so far (set by the forward/validation stages). */
  bytesIn: number;
  /** A buffered body, when a stage had to read it (validation); forwarded instead of the stream. */
  body: Buffer | null;
  /**
   * The request body stream (null when the request has none). A stage may
   * replace it with a wrapping stream (the body-size limiter); the server
   * forwards whichever stream is here when `body` is null.
   */
  bodyStream: Readable | null;
  /**
   * Set by a stage that wants to see the upstream response (audit-mode
   * response validation): gets the status, headers and body stream, returns
   * the stream to send on (a tee). Runs before the decision is recorded.
   */
  responseTap: ((status: number, headers: IncomingHttpHeaders, body: Readable) => Readable) | null;
  readonly timings: StageTiming[];
  readonly wouldDeny: WouldDeny[];
  /** Rule that allowed the request (authz), for the decision record. */
  allowRule: string | null;
  /** Headers a stage wants on the response (RateLimit headers on allowed requests). */
  responseHeaders: Record<string, string> | null;
  /** Fleet-wide quotas this request counts against (set by the rate-limit stage when it lets the request through). */
  quotaCharges?: QuotaCharge[];
}

/**
 * A request counted against a fleet-wide quota (rate-limit rule with scope: global): the fact the
 * detector's quota aggregator counts from the decision stream. The key is the rule's key for this
 * request (a subject, client id, claim value, IP...), values the decision event already carries.
 */
export interface QuotaCharge {
  readonly rule: string;
  readonly key: string;
  readonly limit: number;
  /** Window length, milliseconds; windows are aligned to the epoch. */
  readonly windowMs: number;
}

export interface Continue {
  readonly kind: 'continue';
}

export interface Deny {
  readonly kind: 'deny';
  readonly code: Code;
  /** Rule id that decided, if a rule did. */
  readonly rule: string | null;
  /**
   * Why, for operators only: the decision event's `detail`, logs and alerts
   * (a block's reason or ticket, a detection and its threshold, the limit that
   * was crossed, a rule id, the credential check that failed). Never sent to
   * the client.
   */
  readonly reason?: string;
  /**
   * What the client is told in problem+json `detail`, if anything: a fixed
   * sentence that helps a legitimate caller fix its own request. Never a
   * value of the policy (reasons, rule ids, limits, thresholds), never a
   * value of the request, never the state of the sidecar or the upstream.
   * The rule, case by case, is in docs/codes.md ("What the client is told").
   */
  readonly detail?: string;
  /** Extra problem+json members (e.g. validation errors). */
  readonly extensions?: Readonly<Record<string, unknown>>;
  /** Response headers (Retry-After, RateLimit...). */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * What was found, not a decision: the rule or block entry that matched is itself in
   * dry-run (audit). Whether the deny is enforced or recorded as would_deny is decided by
   * the runner alone (pipeline/runner.ts), from this and the policy's mode and auditStages.
   */
  readonly audit?: boolean;
}

export type Verdict = Continue | Deny;

export const CONTINUE: Continue = Object.freeze({ kind: 'continue' });

export function deny(code: Code, rule: string | null = null, more: Omit<Deny, 'kind' | 'code' | 'rule'> = {}): Deny {
  return { kind: 'deny', code, rule, ...more };
}

/**
 * A sample request for `palisade policy explain` and `policy test`, or a
 * recorded one replayed by `policy diff`: facts only, never a token.
 */
export interface ExplainRequest {
  readonly method: string;
  /** Normalized path. */
  readonly path: string;
  readonly host: string;
  /**
   * Who the caller is. A token method among `methods` stands for a token
   * that verified (explain has no token to check; a recording keeps none).
   */
  readonly identity: Identity | null;
  readonly clientIp: string | null;
  /** A token was presented and refused with this code (a recorded authn deny); absent when none is known. */
  readonly tokenFailure?: Code | null;
}

/** What a stage would do with a sample request: its reasoning, and its deny if it would deny. */
export interface StageExplanation {
  readonly trace: readonly string[];
  readonly deny: Deny | null;
  /**
   * The identity the later stages see, when this stage establishes it (authn:
   * a route that asks for no token never reads one, so its claims do not
   * reach authorization). Absent: unchanged.
   */
  readonly identity?: Identity | null;
}

/** One stage: one job. May return synchronously (preferred on the hot path). */
export interface Stage {
  readonly name: StageName;
  run(ctx: RequestContext): Verdict | Promise<Verdict>;
  /** For `policy explain`: what this stage would do with a sample request. */
  explain?(req: ExplainRequest): StageExplanation;
}

/**
 * What the runner reads of a compiled policy (src/policy/compiled.ts extends it): the stages
 * and the dry-run settings. Declared here so the pipeline's vocabulary does not import the
 * policy compiler, which imports it.
 */
export interface PipelinePolicy {
  /** Stages in pipeline order (forward excluded; the server forwards). */
  readonly stages: readonly Stage[];
  /** spec.mode: audit: every deny is recorded as would_deny. */
  readonly auditAll: boolean;
  /** spec.auditStages: the stages whose denies are recorded as would_deny. */
  readonly auditStages: ReadonlySet<StageName>;
}

/** What a stage builder gets besides the policy document. */
export interface CompileContext {
  /** Directory of the policy file: relative paths in the policy resolve against it. */
  readonly baseDir: string;
  readonly services: Services;
  /** Declares route templates (for metrics labels, params, rate-limit keys). */
  addRoutes(routes: readonly { template: string; methods?: readonly string[] }[]): void;
}

/** Builds a stage from a policy, or returns null when the policy does not use it (an unused stage costs nothing per request). */
export type StageBuilder = (doc: PolicyDocument, cc: CompileContext) => Stage | null | Promise<Stage | null>;
