/** Maps jose's verification errors to stable codes (src/errors/codes.ts). */
import { errors } from 'jose';
import { failure, type AuthnFailure } from '../result.ts';

export function failureOfJoseError(err: unknown): AuthnFailure | null {
  if (err instanceof errors.JWTExpired) return failure('AUTHN_TOKEN_EXPIRED', 'the token has expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'nbf':
        return err.reason === 'check_failed' ? failure('AUTHN_TOKEN_NOT_YET_VALID', 'the token is not valid yet (nbf)') : failure('AUTHN_TOKEN_INVALID', 'the token\'s nbf claim is not a number');
      case 'iat':
        return err.reason === 'check_failed' ? failure('AUTHN_TOKEN_NOT_YET_VALID', 'the token was issued in the future (iat)') : failure('AUTHN_TOKEN_INVALID', 'the token\'s iat claim is not a number');
      case 'aud':
        return failure('AUTHN_AUDIENCE_MISMATCH', err.reason === 'missing' ? 'the token has no aud claim' : 'the token is not meant for this service (aud)');
      case 'iss':
        return failure('AUTHN_ISSUER_UNKNOWN', 'the token\'s issuer is not trusted');
      case 'exp':
        return failure('AUTHN_TOKEN_INVALID', err.reason === 'missing' ? 'the token has no exp claim' : 'the token\'s exp claim is not a number');
      default:
        return failure('AUTHN_TOKEN_INVALID', `the token's ${err.claim} claim failed validation`);
    }
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return failure('AUTHN_ALGORITHM_FORBIDDEN', 'the token\'s signing algorithm is not allowed');
  if (err instanceof errors.JWSSignatureVerificationFailed) return failure('AUTHN_TOKEN_INVALID', 'the token\'s signature does not verify');
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return failure('AUTHN_TOKEN_MALFORMED', 'the token is not a well-formed signed JWT');
  if (err instanceof errors.JOSENotSupported) return failure('AUTHN_TOKEN_INVALID', 'the token uses an unsupported feature');
  return null;
}
