/**
 * One issuer's JSON Web Key Set: fetched lazily (on the first token, never at
 * policy load), kept across policy reloads. Rules that protect the JWKS host
 * and the sidecar, and keep key rotation seamless:
 *
 * - lifetime: the set is used for the lifetime its response gives
 *   (Cache-Control max-age less Age, else Expires; no-cache / no-store count
 *   as 0), clamped to [cacheMinAgeSeconds, cacheMaxAgeSeconds]; without such
 *   headers, cacheMaxAgeSeconds. Under traffic the set is refetched in the
 *   background once REFRESH_AHEAD of the lifetime has passed (never before
 *   cacheMinAgeSeconds: routine fetches stay one per that at most); past the
 *   lifetime, a request (cached verdicts included) waits for the refetch, so
 *   a key the issuer removed stops verifying within the lifetime;
 * - single flight: concurrent requests needing a fetch share one;
 * - unknown kid: one refetch at once, even right after a routine fetch (the
 *   issuer may have published the key since); only a refetch that did not
 *   find the kid arms the cooldown, so a flood of forged kids costs the host
 *   at most one fetch per cooldown; a fetch started after the request arrived
 *   and lacking the kid answers without another;
 * - known keys stay in use while the host is down (a failed fetch keeps
 *   them), and a failing host is tried at most once per cooldown;
 * - each issuer has its own state and fetch timeout: one failing issuer never
 *   holds up another.
 *
 * An unknown kid after that: AUTHN_KEY_UNKNOWN if the key set (fetched fine)
 * lacks it, or AUTHN_JWKS_UNAVAILABLE if the last fetch failed (the key may
 * exist; we cannot tell).
 */
import { FetchError, fetchBounded } from '../http-fetch.ts';
import { failure, type AuthnFailure } from '../result.ts';
import type { AuthnServices } from '../services.ts';
import { keyEntryOf, usableFor, type KeyEntry } from './keys.ts';

/** A JWKS larger than this is refused: real ones are a few KiB. */
const MAX_JWKS_BYTES = 512 * 1024;
/** Keys tried for a token without kid, at most. */
const MAX_CANDIDATES = 8;
/**
 * Share of the lifetime after which traffic refetches the set in the
 * background (but not before cacheMinAgeSeconds): a busy sidecar renews it
 * before it expires, so no request waits.
 */
const REFRESH_AHEAD = 0.8;

export interface JwksOptions {
  /** Upper bound of the lifetime, and the lifetime when the response gives none; ms. */
  readonly cacheMaxAgeMs: number;
  /** Lower bound of the lifetime (protects the host from max-age=0 / no-cache); ms. */
  readonly cacheMinAgeMs: number;
  readonly cooldownMs: number;
  readonly timeoutMs: number;
}

/**
 * The lifetime (ms) a JWKS response gives itself under RFC 9111: max-age less
 * Age, else Expires less Date; 0 for no-cache / no-store; null when it says
 * nothing (then the configured lifetime applies).
 */
export function responseLifetimeMs(headers: Headers, now: number): number | null {
  const cc = headers.get('cache-control');
  if (cc !== null) {
    let maxAge: number | null = null;
    for (const part of cc.split(',')) {
      const [rawName, ...rest] = part.split('=');
      const name = rawName!.trim().toLowerCase();
      if (name === 'no-store' || name === 'no-cache') return 0;
      if (name === 'max-age') {
        const v = rest.join('=').trim().replace(/^"(.*)"$/, '$1');
        // A malformed max-age makes the response stale (RFC 9111 4.2.1).
        maxAge = /^\d+$/.test(v) ? Number(v) : 0;
      }
    }
    if (maxAge !== null) {
      const age = Number(headers.get('age') ?? 0);
      return Math.max(0, (maxAge - (Number.isFinite(age) && age > 0 ? age : 0)) * 1000);
    }
  }
  const expires = headers.get('expires');
  if (expires !== null) {
    const at = Date.parse(expires);
    if (Number.isNaN(at)) return 0; // an invalid Expires means already expired
    const date = Date.parse(headers.get('date') ?? '');
    return Math.max(0, at - (Number.isNaN(date) ? now : date));
  }
  return null;
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
  /** The lifetime the last response gave (ms, unclamped), or null when it gave none. */
  #issuerLifetimeMs: number | null = null;
  #attemptAt = -Infinity;
  #lastOk: boolean | null = null;
  #inflight: Promise<void> | null = null;
  #etag: string | null = null;
  /** Fetches started so far, and the number of the last one that succeeded (tells "started after this request arrived"). */
  #seq = 0;
  #okSeq = 0;
  /** No refetch for an unknown kid before this clock value: armed by a refetch that did not find its kid. */
  #kidRefetchAfter = -Infinity;
  /** Fetch attempts (network requests) so far. */
  fetches = 0;

  constructor(issuer: string, uri: string, opts: JwksOptions, svc: AuthnServices) {
    this.issuer = issuer;
    this.uri = uri;
    this.#opts = opts;
    this.#svc = svc;
  }

  /** A policy reload may change the timings (the new bounds apply to the current set at once); the keys stay. */
  configure(opts: JwksOptions): void {
    this.#opts = opts;
  }

  get keyCount(): number {
    return this.#keys.length;
  }

  /** How long the current set is used before it must be refetched, ms. */
  get lifetimeMs(): number {
    const { cacheMinAgeMs: min, cacheMaxAgeMs: max } = this.#opts;
    const given = this.#issuerLifetimeMs;
    return given === null ? max : Math.min(max, Math.max(min, given));
  }

  /** Fetches started so far: a caller notes it when its request arrives (see keysFor's `arrival`). */
  get fetchSeq(): number {
    return this.#seq;
  }

  /**
   * Keys that may verify a token with this kid and alg. Resolves to the
   * candidates (non-empty), or a failure. `arrival`: fetchSeq when the request
   * arrived, if it already waited for a fetch (a fetch started since then and
   * lacking the kid makes a refetch pointless).
   */
  async keysFor(kid: string | undefined, alg: string, arrival = this.#seq): Promise<readonly KeyEntry[] | AuthnFailure> {
    const svc = this.#svc;
    const pending = this.freshen();
    if (pending) await pending;
    if (this.#fetchedAt === null) return failure('AUTHN_JWKS_UNAVAILABLE', 'the issuer\'s key set could not be fetched');
    let found = this.#candidates(kid, alg);
    if (found === 'incompatible') return failure('AUTHN_TOKEN_INVALID', 'the key named by the token cannot verify its algorithm');
    if (found.length > 0) {
      svc.metrics.jwksCacheHit?.(this.issuer);
      return found;
    }
    // Unknown kid: the fetch in flight, else one refetch of our own, unless a
    // set fetched after this request arrived already lacks it.
    let own = false;
    while (this.#okSeq <= arrival) {
      if (this.#inflight) await this.#inflight;
      else if (!own && this.#kidRefetchAllowed()) {
        own = true;
        await this.#start(kid ?? null);
      } else {
        if (!own) svc.metrics.jwksFetch?.(this.issuer, 'cooldown', 0);
        break;
      }
      found = this.#candidates(kid, alg);
      if (found === 'incompatible') return failure('AUTHN_TOKEN_INVALID', 'the key named by the token cannot verify its algorithm');
      if (found.length > 0) return found;
    }
    return this.#lastOk === false
      ? failure('AUTHN_JWKS_UNAVAILABLE', 'the issuer\'s key set could not be fetched and no cached key matches the token')
      : failure('AUTHN_KEY_UNKNOWN', 'no key of the issuer matches the token\'s kid');
  }

  /**
   * Keeps the set within its lifetime: null when it may be used as is (a
   * background refetch may have been started), or the fetch to wait for first
   * (never fetched, or past its lifetime while the host answered last time; a
   * host that failed last time is not waited for: known keys stay in use).
   */
  freshen(): Promise<void> | null {
    if (this.#fetchedAt === null) return this.#inflight ?? (this.#canStart() ? this.#start(undefined) : null);
    const age = this.#svc.now() - this.#fetchedAt;
    const lifetime = this.lifetimeMs;
    if (age >= lifetime && this.#lastOk === true) return this.#inflight ?? this.#start(undefined);
    // Never ahead of cacheMinAgeSeconds: routine fetches stay at most one per that bound.
    const ahead = Math.min(lifetime, Math.max(lifetime * REFRESH_AHEAD, this.#opts.cacheMinAgeMs));
    if (age >= ahead && this.#canStart()) void this.#start(undefined);
    return null;
  }

  /** Fetches now if nothing is in flight and a failure backoff allows; for tests and warm-up tools. */
  refresh(): Promise<void> {
    if (this.#inflight) return this.#inflight;
    return this.#canStart() ? this.#start(undefined) : Promise.resolve();
  }

  /** A host that failed is tried again only after the cooldown; nothing else holds a routine fetch back. */
  #canStart(): boolean {
    return this.#inflight === null && (this.#lastOk !== false || this.#svc.now() - this.#attemptAt >= this.#opts.cooldownMs);
  }

  #kidRefetchAllowed(): boolean {
    return this.#canStart() && this.#svc.now() >= this.#kidRefetchAfter;
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

  /**
   * One fetch. `forKid`: undefined for a routine fetch; the token's kid (null
   * for a token without one) for an unknown-kid refetch, which arms the
   * cooldown when it does not find that kid.
   */
  #start(forKid: string | null | undefined): Promise<void> {
    const svc = this.#svc;
    this.#attemptAt = svc.now();
    const seq = ++this.#seq;
    this.fetches++;
    svc.stats.jwksFetches++;
    const t0 = performance.now();
    const run = async (): Promise<void> => {
      try {
        const headers: Record<string, string> = { accept: 'application/jwk-set+json, application/json' };
        if (this.#etag && this.#fetchedAt !== null) headers['if-none-match'] = this.#etag;
        const res = await fetchBounded(this.uri, { headers, timeoutMs: this.#opts.timeoutMs, maxBytes: MAX_JWKS_BYTES });
        if (res.status === 304 && this.#fetchedAt !== null) {
          // A 304 renews the stored response; its own Cache-Control, when present, replaces the old (RFC 9111 4.3.4).
          const given = responseLifetimeMs(res.headers, svc.now());
          if (given !== null) this.#issuerLifetimeMs = given;
          this.#fetchedAt = svc.now();
          this.#lastOk = true;
          this.#okSeq = seq;
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
        this.#issuerLifetimeMs = responseLifetimeMs(res.headers, svc.now());
        this.#fetchedAt = svc.now();
        this.#lastOk = true;
        this.#okSeq = seq;
        svc.metrics.jwksFetch?.(this.issuer, 'ok', (performance.now() - t0) / 1000);
        svc.metrics.jwksKeys?.(this.issuer, this.#keys.length);
      } catch (err) {
        this.#lastOk = false;
        const reason = err instanceof FetchError ? err.reason : 'error';
        svc.logger.warn({ issuer: this.issuer, jwksUri: this.uri, reason, err: (err as Error).message, cachedKeys: this.#keys.length }, 'JWKS fetch failed; cached keys stay in use');
        svc.metrics.jwksFetch?.(this.issuer, 'error', (performance.now() - t0) / 1000);
      } finally {
        if (forKid !== undefined && (this.#lastOk !== true || (forKid === null ? this.#keys.length === 0 : !this.#byKid.has(forKid)))) {
          this.#kidRefetchAfter = svc.now() + this.#opts.cooldownMs;
        }
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
    let retired = false;
    for (const old of this.#keys) {
      if (!seen.has(old.fingerprint)) {
        old.retired = true;
        retired = true;
      }
    }
    // Verdicts vouched for by a removed key leave the verified-token cache now, not at their next lookup.
    if (retired) this.#svc.tokens.deleteWhere((v) => v.key.retired);
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
