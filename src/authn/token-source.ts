/**
 * Reads the token a method checks: the Authorization Bearer header (RFC 6750),
 * a named header, or a named cookie. Compiled once per policy into a reader.
 * Ambiguity is refused rather than resolved: two cookies with the token's name
 * (cookie tossing from a sibling subdomain) or a header sent twice make the
 * token malformed, never "the first one".
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { TokenSourceSpec } from '../policy/document.ts';

/** Longest token accepted, bytes (headers are bounded anyway; this bounds hashing and parsing). */
export const MAX_TOKEN_LENGTH = 16 * 1024;

/** RFC 6750 b64token: what a bearer token may contain (JWTs and usual opaque tokens). */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
/** RFC 9110 token: header and cookie names. */
const NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export type TokenRead =
  | { readonly kind: 'absent' }
  | { readonly kind: 'token'; readonly token: string }
  | { readonly kind: 'malformed'; readonly reason: string };

export type TokenReader = (headers: IncomingHttpHeaders) => TokenRead;

const ABSENT: TokenRead = Object.freeze({ kind: 'absent' });

/**
 * The credentials after "Bearer " (scheme case-insensitive, RFC 9110 11.1), or
 * null when the value uses another scheme. Hand-rolled: a regex with a capture
 * over an ~1 KiB token was a measurable share of a cached request.
 */
function afterBearer(v: string): string | null {
  if (v.length < 7 || v.charCodeAt(6) !== 32 || v.slice(0, 6).toLowerCase() !== 'bearer') return null;
  let i = 7;
  while (v.charCodeAt(i) === 32) i++;
  let end = v.length;
  while (end > i && v.charCodeAt(end - 1) === 32) end--;
  return v.slice(i, end);
}

function checked(value: string, where: string): TokenRead {
  if (value.length === 0) return { kind: 'malformed', reason: `empty token in ${where}` };
  if (value.length > MAX_TOKEN_LENGTH) return { kind: 'malformed', reason: `token in ${where} is longer than ${MAX_TOKEN_LENGTH} bytes` };
  if (!B64TOKEN.test(value)) return { kind: 'malformed', reason: `token in ${where} has characters a bearer token cannot have` };
  return { kind: 'token', token: value };
}

/** Checks a source's name; returns a problem sentence, or null when fine. */
export function tokenSourceProblem(src: TokenSourceSpec): string | null {
  if (src.from === 'bearer') return src.name === undefined ? null : `name "${src.name}" is only used with from: header or from: cookie; remove it`;
  if (src.name === undefined) return `from: ${src.from} needs name (the ${src.from} that holds the token, e.g. ${src.from === 'header' ? 'x-access-token' : 'access_token'})`;
  if (!NAME.test(src.name)) return `name "${src.name}" is not a valid ${src.from} name (letters, digits and !#$%&'*+-.^_\`|~ only)`;
  if (src.from === 'header' && ['cookie', 'host', 'content-length', 'transfer-encoding', 'connection'].includes(src.name.toLowerCase())) {
    return `header "${src.name}" cannot carry a token; use from: cookie for cookies, or another header`;
  }
  return null;
}

export function describeSource(src: TokenSourceSpec): string {
  return src.from === 'bearer' ? 'Authorization: Bearer' : `${src.from} ${src.name ?? ''}`;
}

export function compileTokenSource(src: TokenSourceSpec): TokenReader {
  const problem = tokenSourceProblem(src);
  if (problem) throw new Error(problem);
  if (src.from === 'bearer') {
    return (headers) => {
      const v = headers.authorization;
      if (v === undefined) return ABSENT;
      const token = afterBearer(v);
      // Another scheme (Basic...) is no bearer token: "absent", so the client gets AUTHN_REQUIRED and a challenge.
      if (token === null) return /^Bearer\s*$/i.test(v) ? { kind: 'malformed', reason: 'Authorization: Bearer without a token' } : ABSENT;
      return checked(token, 'Authorization');
    };
  }
  if (src.from === 'header') {
    const name = (src.name as string).toLowerCase();
    return (headers) => {
      const v = headers[name];
      if (v === undefined) return ABSENT;
      if (Array.isArray(v)) return { kind: 'malformed', reason: `header ${name} sent more than once` };
      // Node joins a repeated unknown header with ", ": the comma makes it malformed below.
      return checked(afterBearer(v) ?? v.trim(), `header ${name}`);
    };
  }
  const cookie = src.name as string;
  return (headers) => {
    const raw = headers.cookie;
    if (raw === undefined) return ABSENT;
    let found: string | null = null;
    for (const part of raw.split(';')) {
      const eq = part.indexOf('=');
      if (eq === -1) continue;
      if (part.slice(0, eq).trim() !== cookie) continue;
      if (found !== null) return { kind: 'malformed', reason: `cookie ${cookie} sent more than once` };
      let value = part.slice(eq + 1).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      found = value;
    }
    return found === null ? ABSENT : checked(found, `cookie ${cookie}`);
  };
}
