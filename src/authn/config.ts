/**
 * Checks on spec.authentication that a JSON Schema cannot express, with
 * messages that name the field, the value and the fix. Offline: nothing here
 * touches the network or the secret (policy check runs in CI without either).
 */
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import type { AuthenticationSpec, AuthnRequirement, IntrospectionSpec } from '../policy/document.ts';
import { ASYMMETRIC_ALGORITHMS } from '../policy/schema/authentication.ts';
import { compilePathPattern, PathPatternError } from '../policy/path-pattern.ts';
import type { IntrospectionClientConfig } from './introspection/client.ts';
import { tokenSourceProblem } from './token-source.ts';

const ROOT = 'spec.authentication';
const REQUIRE_WORDS = ['none', 'mtls', 'jwt', 'introspection'];

function loopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  return h === '::1';
}

function urlProblem(value: string, allowHttp: boolean, allowHttpField: string): string | null {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return `"${value}" is not an absolute URL; write it as https://host/path`;
  }
  if (u.username || u.password) return 'must not contain credentials (user:password@): the policy lives in Git; use clientSecret for secrets';
  if (u.protocol === 'https:') return null;
  if (u.protocol !== 'http:') return `scheme "${u.protocol}" is not supported; use https://`;
  if (loopback(u.hostname) || allowHttp) return null;
  return `"${value}" uses plain http on a non-loopback host; use https://, or set ${allowHttpField}: true if the network path is trusted`;
}

function requireProblems(field: string, r: AuthnRequirement, spec: AuthenticationSpec): string[] {
  if (typeof r === 'string' && !REQUIRE_WORDS.includes(r)) {
    return [`${field} ("${r}"): must be one of ${REQUIRE_WORDS.map((w) => `"${w}"`).join(', ')}, or { anyOf: [...] } / { allOf: [...] }`];
  }
  const methods = r === 'none' ? [] : typeof r === 'string' ? [r] : 'anyOf' in r ? r.anyOf : r.allOf;
  const out: string[] = [];
  if (methods.includes('jwt') && spec.jwt.issuers.length === 0) out.push(`${field}: requires jwt, but ${ROOT}.jwt.issuers is empty; add an issuer or remove jwt`);
  if (methods.includes('introspection') && !spec.introspection) out.push(`${field}: requires introspection, but ${ROOT}.introspection is not configured; configure it or remove introspection`);
  return out;
}

function algorithmProblem(field: string, alg: string): string | null {
  if ((ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg)) return null;
  if (alg.toLowerCase() === 'none') return `${field} ("${alg}"): unsigned tokens would be accepted; remove it`;
  if (/^HS\d+$/i.test(alg)) {
    return `${field} ("${alg}"): HMAC algorithms are refused with a JWKS (anyone holding the public key could sign tokens: key confusion); remove it and use ${ASYMMETRIC_ALGORITHMS.slice(0, 3).join('/')} or ES256`;
  }
  return `${field} ("${alg}"): not a supported signing algorithm; use one of ${ASYMMETRIC_ALGORITHMS.join(', ')}`;
}

/** Every problem found, as lines; empty when the section is fine. */
export function authenticationProblems(spec: AuthenticationSpec): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  spec.jwt.issuers.forEach((iss, i) => {
    const f = `${ROOT}.jwt.issuers[${i}]`;
    if (seen.has(iss.issuer)) out.push(`${f}.issuer ("${iss.issuer}"): listed twice; merge the entries (audiences and algorithms are per issuer)`);
    seen.add(iss.issuer);
    if (iss.jwks.cacheMinAgeSeconds > iss.jwks.cacheMaxAgeSeconds) {
      out.push(`${f}.jwks.cacheMinAgeSeconds (${iss.jwks.cacheMinAgeSeconds}): above cacheMaxAgeSeconds (${iss.jwks.cacheMaxAgeSeconds}); lower it, or raise cacheMaxAgeSeconds`);
    }
    const u = urlProblem(iss.jwksUri, iss.jwks.allowHttp, `${f}.jwks.allowHttp`);
    if (u) out.push(`${f}.jwksUri: ${u}`);
    iss.algorithms.forEach((a, j) => {
      const p = algorithmProblem(`${f}.algorithms[${j}]`, a);
      if (p) out.push(p);
    });
  });
  const jwtSrc = tokenSourceProblem(spec.jwt.tokenSource);
  if (jwtSrc) out.push(`${ROOT}.jwt.tokenSource: ${jwtSrc}`);
  const intro = spec.introspection;
  if (intro) {
    const f = `${ROOT}.introspection`;
    const u = urlProblem(intro.endpoint, intro.allowHttp, `${f}.allowHttp`);
    if (u) out.push(`${f}.endpoint: ${u}`);
    if (typeof intro.clientSecret === 'string') {
      out.push(`${f}.clientSecret: the secret itself must not be in the policy (it lives in Git); use clientSecret: { file: /var/run/secrets/introspection/client-secret } or { env: INTROSPECTION_CLIENT_SECRET }`);
    }
    const src = tokenSourceProblem(intro.tokenSource);
    if (src) out.push(`${f}.tokenSource: ${src}`);
  }
  spec.requirements.forEach((r, i) => {
    out.push(...requireProblems(`${ROOT}.requirements[${i}].require`, r.require, spec));
    r.paths.forEach((p, j) => {
      try {
        compilePathPattern(p);
      } catch (err) {
        if (err instanceof PathPatternError) out.push(`${ROOT}.requirements[${i}].paths[${j}]: ${err.message}`);
        else throw err;
      }
    });
  });
  const ids = new Set<string>();
  for (const r of spec.requirements) {
    if (ids.has(r.id)) out.push(`${ROOT}.requirements: id "${r.id}" is used twice; requirement ids must be unique`);
    ids.add(r.id);
  }
  out.push(...requireProblems(`${ROOT}.defaultRequire`, spec.defaultRequire, spec));
  return out;
}

/** The introspection client settings, with the secret file resolved against the policy's directory. */
export function introspectionClientConfig(spec: IntrospectionSpec, baseDir: string): IntrospectionClientConfig {
  const ref = spec.clientSecret;
  if (typeof ref === 'string') throw new Error(`${ROOT}.introspection.clientSecret: must be { file } or { env }`);
  return {
    endpoint: spec.endpoint,
    clientId: spec.clientId,
    secret: 'file' in ref ? { file: resolve(baseDir, ref.file) } : { env: ref.env },
    authMethod: spec.authMethod,
    timeoutMs: spec.timeoutMs,
  };
}

/** A warning (not an error: policy check runs where the secret is not mounted) when the secret is not there now. */
export function secretWarning(cfg: IntrospectionClientConfig): string | null {
  if ('file' in cfg.secret) return existsSync(cfg.secret.file) ? null : `introspection client secret file ${cfg.secret.file} does not exist (yet); introspection fails closed until it does`;
  const v = process.env[cfg.secret.env];
  return v === undefined || v === '' ? `introspection client secret variable ${cfg.secret.env} is not set; introspection fails closed until it is` : null;
}
