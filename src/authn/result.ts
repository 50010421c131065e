/**
 * What each credential check returns: the facts it vouches for, or a failure
 * with a stable code and a reason for operators (never a raw token, claim
 * value or key). The client gets the code and its title only: which check a
 * credential got past is worth knowing to someone forging one.
 */
import type { Code } from '../errors/codes.ts';

export interface AuthnFailure {
  readonly ok: false;
  readonly code: Code;
  /** For the decision event and policy explain, never the client: no token, claim value or key. */
  readonly reason: string;
}

export function failure(code: Code, reason: string): AuthnFailure {
  return Object.freeze({ ok: false, code, reason });
}

/** What a verified token (JWT or introspection) says about its holder. */
export interface TokenFacts {
  readonly ok: true;
  readonly method: 'jwt' | 'introspection';
  readonly issuer: string | null;
  readonly subject: string | null;
  readonly clientId: string | null;
  readonly scopes: readonly string[];
  readonly groups: readonly string[];
  /** Claims of the token or introspection response; never the token itself. */
  readonly claims: Readonly<Record<string, unknown>>;
  readonly tokenId: string | null;
  /** Epoch seconds. */
  readonly expiresAt: number | null;
}

export type TokenOutcome = TokenFacts | AuthnFailure;

/**
 * Failures that only say "this token is not one of ours as that kind"
 * (not a JWT at all, or a JWT from an issuer this policy does not know): in
 * anyOf, the next method may still accept the same token (an opaque token for
 * introspection). Any other failure is a definitive verdict on the token.
 */
export function isNotOurs(code: Code): boolean {
  return code === 'AUTHN_TOKEN_MALFORMED' || code === 'AUTHN_ISSUER_UNKNOWN';
}
