/**
 * The decision record: exactly one per request, allowed or denied. It carries
 * every request fact that authorization reads (so `policy diff` can replay a
 * recording against another policy) and never a token, cookie or query string.
 * Sinks encode it (OCSF HTTP Activity by default, src/decision/ocsf/).
 */
import type { Code } from '../errors/codes.ts';
import type { Decider, Identity, QuotaCharge, StageTiming, TlsFacts, WouldDeny } from '../pipeline/types.ts';

export interface DecisionRecord {
  /** Unique event id (UUID v7: time-ordered), for consumer-side de-duplication. */
  readonly id: string;
  readonly requestId: string;
  readonly traceId: string | null;
  /** Request start, epoch milliseconds. */
  readonly time: number;
  /** Total time in the sidecar including the upstream, milliseconds (fractional). */
  readonly durationMs: number;
  readonly verdict: 'allow' | 'deny';
  /** The stage (or layer) that decided. For allows: "forward". */
  readonly decidedBy: Decider;
  readonly code: Code;
  /** Rule that decided: the allow rule for allows, the deny rule or null. */
  readonly rule: string | null;
  /** Denies that audit (dry-run) mode let through. */
  readonly wouldDeny: readonly WouldDeny[];
  readonly identity: Identity | null;
  readonly client: { readonly ip: string; readonly port: number; readonly forwardedFor: readonly string[] };
  readonly server: { readonly ip: string; readonly port: number };
  readonly tls: TlsFacts | null;
  readonly request: {
    readonly method: string;
    /** Normalized path, or the raw target cut to 2 KiB when it could not be normalized. */
    readonly path: string;
    readonly host: string;
    readonly scheme: 'https' | 'http';
    readonly httpVersion: string;
    readonly userAgent: string | null;
    readonly contentType: string | null;
    /** Matched route template, or null. */
    readonly route: string | null;
    readonly params: Readonly<Record<string, string>> | null;
    readonly bytesIn: number;
  };
  readonly response: { readonly status: number; readonly bytesOut: number };
  readonly stages: readonly StageTiming[];
  /** Upstream time (connect to last byte), milliseconds, or null when not forwarded. */
  readonly upstreamMs: number | null;
  /**
   * The policy in force. keyId: the trusted key that verified the policy file's signature before
   * it was applied (PALISADE_POLICY_PUBLIC_KEYS); absent when the policy was applied unverified.
   */
  readonly policy: { readonly name: string; readonly version: string; readonly hash: string; readonly keyId?: string } | null;
  /**
   * Why, for operators (a block's reason, the limit crossed, the credential check that failed,
   * the upstream's error): never a token, key or raw value, and never sent to the client, who
   * gets a fixed sentence at most (docs/codes.md, "What the client is told").
   */
  readonly detail: string | null;
  /** Fleet-wide quotas the request counted against (absent when none applied): what the quota aggregator counts. */
  readonly quotas?: readonly QuotaCharge[];
}
