/**
 * One OAuth2 token introspection call (RFC 7662) with client authentication
 * (RFC 6749 2.3.1: client_secret_basic or client_secret_post). The client
 * secret is read when the call is made, from a file or an environment
 * variable, so a rotated Kubernetes Secret is picked up and `policy check`
 * never needs it. The secret and the token never reach a log line.
 */
import { readFile } from 'node:fs/promises';
import { FetchError, fetchBounded } from '../http-fetch.ts';

const MAX_RESPONSE_BYTES = 64 * 1024;

export interface IntrospectionClientConfig {
  readonly endpoint: string;
  readonly clientId: string;
  /** Absolute file path, or environment variable name. */
  readonly secret: { readonly file: string } | { readonly env: string };
  readonly authMethod: 'client_secret_basic' | 'client_secret_post';
  readonly timeoutMs: number;
}

/** Why a call failed, for logs and the metrics label; never the secret. */
export class IntrospectionError extends Error {
  readonly reason: string;
  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IntrospectionError';
    this.reason = reason;
  }
}

/** application/x-www-form-urlencoded encoding of one value (RFC 6749 appendix B). */
function formEncode(s: string): string {
  return encodeURIComponent(s).replace(/%20/g, '+');
}

export async function readClientSecret(secret: IntrospectionClientConfig['secret']): Promise<string> {
  if ('env' in secret) {
    const v = process.env[secret.env];
    if (v === undefined || v === '') throw new IntrospectionError('secret', `client secret environment variable ${secret.env} is not set`);
    return v;
  }
  let text: string;
  try {
    text = await readFile(secret.file, 'utf8');
  } catch (err) {
    throw new IntrospectionError('secret', `client secret file ${secret.file} is unreadable: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const v = text.replace(/\r?\n$/, '');
  if (v === '') throw new IntrospectionError('secret', `client secret file ${secret.file} is empty`);
  return v;
}

/** Sends the token for introspection; resolves to the parsed response (with a boolean `active`). */
export async function introspect(cfg: IntrospectionClientConfig, token: string): Promise<Record<string, unknown>> {
  const secret = await readClientSecret(cfg.secret);
  const form = [`token=${formEncode(token)}`, 'token_type_hint=access_token'];
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (cfg.authMethod === 'client_secret_basic') {
    headers['authorization'] = `Basic ${Buffer.from(`${formEncode(cfg.clientId)}:${formEncode(secret)}`).toString('base64')}`;
  } else {
    form.push(`client_id=${formEncode(cfg.clientId)}`, `client_secret=${formEncode(secret)}`);
  }
  let res;
  try {
    res = await fetchBounded(cfg.endpoint, { method: 'POST', headers, body: form.join('&'), timeoutMs: cfg.timeoutMs, maxBytes: MAX_RESPONSE_BYTES });
  } catch (err) {
    if (err instanceof FetchError) throw new IntrospectionError(err.reason, err.message, { cause: err });
    throw err;
  }
  if (res.status !== 200) throw new IntrospectionError(res.status === 401 || res.status === 403 ? 'client_auth' : 'status', `HTTP ${res.status}`);
  let doc: unknown;
  try {
    doc = JSON.parse(res.body.toString('utf8'));
  } catch {
    throw new IntrospectionError('invalid', 'response is not JSON');
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc) || typeof (doc as { active?: unknown }).active !== 'boolean') {
    throw new IntrospectionError('invalid', 'response has no boolean "active"');
  }
  return doc as Record<string, unknown>;
}
