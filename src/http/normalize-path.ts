/**
 * Request path normalization. Rules match, and the upstream receives, the same
 * canonical path, so an encoding trick can never reach the service as
 * something a rule did not see:
 *   - percent-decoding (so /%61dmin is /admin);
 *   - encoded "/" and "\" , NUL and control bytes are rejected, not decoded
 *     (servers disagree on them: the classic path-confusion bypasses);
 *   - double encoding (%2561) is rejected: a second decode downstream would
 *     produce a path no rule saw;
 *   - ";" in a segment is rejected unless the policy allows matrix params,
 *     because frameworks that strip ";params" would see /admin in /admin;x;
 *   - duplicate slashes collapse, "." and ".." segments resolve, and climbing
 *     above the root is rejected.
 * The result is UTF-8 text for matching, and a canonical encoding to forward.
 */

export type NormalizedPath =
  | { readonly ok: true; readonly path: string; readonly forward: string; readonly query: string }
  | { readonly ok: false; readonly reason: string };

const HEX = /^[0-9A-Fa-f]{2}$/;
const decoder = new TextDecoder('utf-8', { fatal: true });

function fail(reason: string): NormalizedPath {
  return { ok: false, reason };
}

/** Characters allowed unencoded in a path segment (RFC 3986 pchar minus pct-encoded). */
const SAFE = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@") SAFE[c.charCodeAt(0)] = 1;

function encodeSegment(seg: string): string {
  let plain = true;
  for (let i = 0; i < seg.length; i++) {
    const c = seg.charCodeAt(i);
    if (c >= 128 || SAFE[c] !== 1) {
      plain = false;
      break;
    }
  }
  if (plain) return seg;
  let out = '';
  for (const byte of Buffer.from(seg, 'utf8')) {
    out += byte < 128 && SAFE[byte] === 1 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function normalizePath(target: string, options: { allowMatrixParams?: boolean } = {}): NormalizedPath {
  if (target.length === 0 || target.charCodeAt(0) !== 47 /* / */) return fail('request target must be an absolute path');
  const q = target.indexOf('?');
  const rawPath = q === -1 ? target : target.slice(0, q);
  const query = q === -1 ? '' : target.slice(q + 1);
  if (rawPath.includes('#') || query.includes('#')) return fail('fragment in request target');

  // Fast path: nothing to decode or resolve (the common case).
  let simple = true;
  for (let i = 0; i < rawPath.length; i++) {
    const c = rawPath.charCodeAt(i);
    if (c === 37 /* % */ || c === 92 /* \ */ || c === 59 /* ; */ || c < 0x21 || c >= 0x7f || (c === 47 && rawPath.charCodeAt(i + 1) === 47) || (c === 46 /* . */ && rawPath.charCodeAt(i - 1) === 47)) {
      simple = false;
      break;
    }
  }
  if (simple) return { ok: true, path: rawPath, forward: rawPath, query };

  const bytes: number[] = [];
  for (let i = 0; i < rawPath.length; i++) {
    const c = rawPath.charCodeAt(i);
    if (c === 37) {
      const hex = rawPath.slice(i + 1, i + 3);
      if (!HEX.test(hex)) return fail('invalid percent-encoding');
      const b = parseInt(hex, 16);
      if (b === 0x2f) return fail('encoded slash (%2F) in path');
      if (b === 0x5c) return fail('encoded backslash (%5C) in path');
      if (b < 0x20 || b === 0x7f) return fail('encoded control character in path');
      if (b === 0x25 && HEX.test(rawPath.slice(i + 3, i + 5))) return fail('double percent-encoding in path');
      bytes.push(b);
      i += 2;
      continue;
    }
    if (c === 92) return fail('backslash in path');
    if (c < 0x21 || c === 0x7f) return fail('control character or space in path');
    if (c >= 0x80) return fail('non-ASCII byte in path (must be percent-encoded)');
    bytes.push(c);
  }
  let decoded: string;
  try {
    decoded = decoder.decode(new Uint8Array(bytes));
  } catch {
    return fail('path is not valid UTF-8 after percent-decoding');
  }
  if (!options.allowMatrixParams && decoded.includes(';')) return fail('";" in path (matrix parameters are not allowed by the policy)');

  const trailingSlash = decoded.length > 1 && decoded.endsWith('/');
  const out: string[] = [];
  for (const seg of decoded.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length === 0) return fail('path climbs above the root');
      out.pop();
      continue;
    }
    out.push(seg);
  }
  const path = '/' + out.join('/') + (trailingSlash && out.length > 0 ? '/' : '');
  const forward = '/' + out.map(encodeSegment).join('/') + (trailingSlash && out.length > 0 ? '/' : '');
  return { ok: true, path, forward, query };
}
