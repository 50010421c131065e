/**
 * One issuer's JSON Web Key Set: fetched lazily (on the first token, never at
 * policy load), kept across policy reloads, refreshed in the background when
 * older than cacheMaxAge. Rules that protect the JWKS host and the sidecar:
 *
 * - single flight: concurrent requests needing a fetch share one;
 * - at most one fetch per cooldown, whatever the outcome, so a flood of forged
 *   kids or a dead host costs one request per cooldown;
 * - known keys stay in use while the host is down (a failed refresh keeps them);
 * - each issuer has its own state and fetch timeout: one failing issuer never
 *   holds up another.
 *
 * An unknown kid: refetch once if the cooldown allows (waiting for an
 * in-flight fetch instead of starting one), then AUTHN_KEY_UNKNOWN if the key
 * set (fetched fine) lacks it, or AUTHN_JWKS_UNAVAILABLE if the last fetch
 * failed (the key may exist; we cannot tell).
 */
import { FetchError, fetchBounded } from '../http-fetch.ts';
import { failure, type AuthnFailure } from '../result.ts';
import type { AuthnServices } from '../services.ts';
import { keyEntryOf, usableFor, type KeyEntry } from './keys.ts';

/** A JWKS larger than this is refused: real ones are a few KiB. */
const MAX_JWKS_BYTES = 512 * 1024;
/** Keys tried for a token without kid, at most. */
const MAX_CANDIDATES = 8;

export interface JwksOptions {
  readonly cacheMaxAgeMs: number;
  readonly cooldownMs: number;
  readonly timeoutMs: number;
}

export class JwksState {
  readonly issuer: string;
  readonly uri: string;
  #opts: JwksOptions;
  readonly #svc: AuthnServices;
  #keys: readonly KeyEntry[] = [];
  #byKid = new Map<string, KeyEntry[]>();
  /** Clock (services.now) of the last successful fetch; null before the first. */
  #fetchedAt: number | null = null;
  #attemptAt = -Infinity;
  #lastOk: boolean | null = null;
  #inflight: Promise<void> | null = null;
  #etag: string | null = null;
  /** Fetch attempts (network requests) so far. */
  fetches = 0;

  constructor(issuer: string, uri: string, opts: JwksOptions, svc: AuthnServices) {
    this.issuer = issuer;
    this.uri = uri;
    this.#opts = opts;
    this.#svc = svc;
  }

  /** A policy reload may change the timings; the keys stay. */
  configure(opts: JwksOptions): void {
    this.#opts = opts;
  }

  get keyCount(): number {
    return this.#keys.length;
  }

  /**
   * Keys that may verify a token with this kid and alg. Resolves to the
   * candidates (non-empty), or a failure.
   */
  async keysFor(kid: string | undefined, alg: string): Promise<readonly KeyEntry[] | AuthnFailure> {
    const svc = this.#svc;
    if (this.#fetchedAt === null) {
      // Never fetched: wait for one (shared), unless a recent attempt failed.
      await this.#fetchIfAllowed();
      if (this.#fetchedAt === null) return failure('AUTHN_JWKS_UNAVAILABLE', 'the issuer\'s key set could not be fetched');
    } else if (svc.now() - this.#fetchedAt >= this.#opts.cacheMaxAgeMs && this.#canStart()) {
      // Stale: refresh in the background and keep verifying with the keys we have.
      void this.#start();
    }
    let found = this.#candidates(kid, alg);
    if (found === 'incompatible') return failure('AUTHN_TOKEN_INVALID', 'the key named by the token cannot verify its algorithm');
    if (found.length > 0) {
      svc.metrics.jwksCacheHit?.(this.issuer);
      return found;
    }
    // Unknown kid: one refetch (or the one already running), cooldown permitting.
    if (this.#inflight || this.#canStart()) {
      await this.#fetchIfAllowed();
      found = this.#candidates(kid, alg);
      if (found === 'incompatible') return failure('AUTHN_TOKEN_INVALID', 'the key named by the token cannot verify its algorithm');
      if (found.length > 0) return found;
    } else {
      svc.metrics.jwksFetch?.(this.issuer, 'cooldown', 0);
    }
    return this.#lastOk === false
      ? failure('AUTHN_JWKS_UNAVAILABLE', 'the issuer\'s key set could not be fetched and no cached key matches the token')
      : failure('AUTHN_KEY_UNKNOWN', 'no key of the issuer matches the token\'s kid');
  }

  /** Fetches now if nothing is in flight and the cooldown allows; for tests and warm-up tools. */
  refresh(): Promise<void> {
    return this.#fetchIfAllowed();
  }

  #canStart(): boolean {
    return this.#inflight === null && this.#svc.now() - this.#attemptAt >= this.#opts.cooldownMs;
  }

  #fetchIfAllowed(): Promise<void> {
    if (this.#inflight) return this.#inflight;
    if (!this.#canStart()) return Promise.resolve();
    return this.#start();
  }

  #candidates(kid: string | undefined, alg: string): readonly KeyEntry[] | 'incompatible' {
    if (kid !== undefined) {
      const withKid = this.#byKid.get(kid);
      if (!withKid) return [];
      const usable = withKid.filter((k) => usableFor(k, alg));
      return usable.length > 0 ? usable : 'incompatible';
    }
    return this.#keys.filter((k) => usableFor(k, alg)).slice(0, MAX_CANDIDATES);
  }

  #start(): Promise<void> {
    const svc = this.#svc;
    this.#attemptAt = svc.now();
    this.fetches++;
    svc.stats.jwksFetches++;
    const t0 = performance.now();
    const run = async (): Promise<void> => {
      try {
        const headers: Record<string, string> = { accept: 'application/jwk-set+json, application/json' };
        if (this.#etag && this.#fetchedAt !== null) headers['if-none-match'] = this.#etag;
        const res = await fetchBounded(this.uri, { headers, timeoutMs: this.#opts.timeoutMs, maxBytes: MAX_JWKS_BYTES });
        if (res.status === 304 && this.#fetchedAt !== null) {
          this.#fetchedAt = svc.now();
          this.#lastOk = true;
          svc.metrics.jwksFetch?.(this.issuer, 'not_modified', (performance.now() - t0) / 1000);
          return;
        }
        if (res.status !== 200) throw new FetchError('status', `HTTP ${res.status}`);
        let doc: unknown;
        try {
          doc = JSON.parse(res.body.toString('utf8'));
        } catch {
          throw new FetchError('invalid', 'response is not JSON');
        }
        const rawKeys = (doc as { keys?: unknown } | null)?.keys;
        if (!Array.isArray(rawKeys)) throw new FetchError('invalid', 'response has no "keys" array');
        this.#install(rawKeys);
        this.#etag = res.headers.get('etag');
        this.#fetchedAt = svc.now();
        this.#lastOk = true;
        svc.metrics.jwksFetch?.(this.issuer, 'ok', (performance.now() - t0) / 1000);
        svc.metrics.jwksKeys?.(this.issuer, this.#keys.length);
      } catch (err) {
        this.#lastOk = false;
        const reason = err instanceof FetchError ? err.reason : 'error';
        svc.logger.warn({ issuer: this.issuer, jwksUri: this.uri, reason, err: (err as Error).message, cachedKeys: this.#keys.length }, 'JWKS fetch failed; cached keys stay in use');
        svc.metrics.jwksFetch?.(this.issuer, 'error', (performance.now() - t0) / 1000);
      } finally {
        this.#inflight = null;
      }
    };
    this.#inflight = run();
    return this.#inflight;
  }

  /** Replaces the key set; unchanged keys keep their entry (and imported CryptoKeys), removed ones are retired. */
  #install(rawKeys: readonly unknown[]): void {
    const previous = new Map(this.#keys.map((k) => [k.fingerprint, k]));
    const next: KeyEntry[] = [];
    const seen = new Set<string>();
    for (const raw of rawKeys) {
      const parsed = keyEntryOf(raw);
      if (!parsed || seen.has(parsed.fingerprint)) continue;
      seen.add(parsed.fingerprint);
      next.push(previous.get(parsed.fingerprint) ?? parsed);
    }
    for (const old of this.#keys) if (!seen.has(old.fingerprint)) old.retired = true;
    const byKid = new Map<string, KeyEntry[]>();
    for (const k of next) {
      if (k.kid === null) continue;
      const list = byKid.get(k.kid);
      if (list) list.push(k);
      else byKid.set(k.kid, [k]);
    }
    if (next.length === 0) this.#svc.logger.warn({ issuer: this.issuer, jwksUri: this.uri }, 'JWKS has no usable signing key; every token of this issuer will be refused');
    this.#keys = next;
    this.#byKid = byKid;
  }
}

/** The issuer's state from the services (created on first use, kept across reloads). */
export function jwksStateFor(svc: AuthnServices, issuer: string, uri: string, opts: JwksOptions): JwksState {
  const key = `${issuer}\n${uri}`;
  let st = svc.jwks.get(key);
  if (st) st.configure(opts);
  else {
    st = new JwksState(issuer, uri, opts, svc);
    svc.jwks.set(key, st);
  }
  return st;
}
