/**
 * config.detections: one entry per detection (detectors/rules/ reads them). Thresholds are
 * max(floor, ratio × baseline, baseline + sigma × σ): every condition must hold.
 */
import { bool, int, num, obj, windowRef } from './kit.ts';

const enabled = bool(true, 'Run this detection. Default true.');
const warmupOnly = bool(true, 'Judge a client only after its warm-up (engine.warmupEvents/warmupSeconds): the threshold is relative to its own baseline. Default true.');
const warmupFloors = bool(false, 'false: a client still in warm-up is judged by the floors (count and share) alone, so an attack cannot hide in its own warm-up; true: wait for the warm-up. After the warm-up its baseline applies too, unless that baseline is itself mostly failures (share >= minRatio). Default false.');
const ratio = (def: number) => num(def, 1, `Observed must exceed this multiple of the client's baseline mean, ×. Default ${def}.`);
const sigma = (def: number) => num(def, 0, `Observed must exceed the baseline mean by this many standard deviations (control limit), σ. Default ${def}.`);

const populationSpec = (what: string, minCount: number, ratioDef: number) =>
  obj(`A client far above the population's normal for the same route: ${what} per client and epoch on one route, against the distribution over all clients on that route (log scale). Works for new clients too.`, {
    enabled,
    minCount: int(minCount, 1, `Observed count in the sliding epoch must reach at least this, events. Default ${minCount}.`),
    ratio: num(ratioDef, 1, `Observed must exceed this multiple of the route's typical (geometric mean) client, ×. Default ${ratioDef}.`),
    sigma: num(3, 0, 'Observed must exceed the route distribution by this many standard deviations on the log scale, σ. Default 3.'),
  });

/** A count of one kind of event over a window, with a floor and a minimum share of requests. */
const countSpec = (description: string, window: 'medium' | 'long', minCount: number, countWhat: string, minRatio: number, shareWhat: string) =>
  obj(description, {
    enabled,
    requireWarmup: warmupFloors,
    window: windowRef(window),
    minCount: int(minCount, 1, `Floor: ${countWhat} in the window, events. Default ${minCount}.`),
    minRatio: num(minRatio, 0, `${shareWhat} must be at least this share of the client's requests in the window, fraction. Default ${minRatio}.`, 1),
    ratio: ratio(4),
    sigma: sigma(6),
  });

export const detectionsSchema = obj('Each detection: one small rule module (detectors/rules/). Thresholds are max(floor, ratio × baseline, baseline + sigma × σ): every condition must hold.', {
  'rate.burst': obj('Requests per second over the window against the client\'s own per-second baseline (EWMA mean and σ): bursts.', {
    enabled,
    requireWarmup: bool(false, 'true: wait for the warm-up; false: a client in warm-up (no baseline yet) is judged by coldMinRate alone. Default false.'),
    window: windowRef('short'),
    minRate: num(30, 0, 'Floor: observed rate must reach at least this, requests/second. Default 30.'),
    coldMinRate: num(60, 0, 'Threshold for a client still in warm-up, which has no baseline: only a clearly abusive rate flags a new client (high severity at 2.5 times this), requests/second. Default 60.'),
    ratio: ratio(4),
    sigma: sigma(6),
  }),
  'rate.sustained': obj('Average requests per second over a longer window against the client\'s baseline: scraping.', {
    enabled,
    requireWarmup: warmupOnly,
    window: windowRef('medium'),
    minRate: num(5, 0, 'Floor: observed average rate must reach at least this, requests/second. Default 5.'),
    ratio: ratio(5),
    sigma: sigma(6),
  }),
  'auth.failures': countSpec('Authentication failures (AUTHN_* and upstream 401: missing, forged, expired or wrong-issuer credentials) over the window: credential stuffing, token guessing. Authorization denials (403) of a valid identity do not count: see enumeration.forbidden.', 'medium', 20, 'failures', 0.5, 'Failures'),
  'auth.slow': countSpec('The same authentication failures over the long window: slow attacks spread over minutes.', 'long', 30, 'failures', 0.2, 'Failures'),
  'enumeration.paths': obj('Distinct request paths (HyperLogLog estimate) over the window against the client\'s usual number: walking resource ids.', {
    enabled,
    requireWarmup: warmupOnly,
    window: windowRef('medium'),
    minDistinct: int(60, 1, 'Floor: distinct paths in the window, paths. Default 60.'),
    minSamples: int(2, 1, 'Samples of the client\'s distinct-path count (one per half window it was active in) before its baseline is used, samples. Default 2.'),
    ratio: ratio(4),
    sigma: sigma(6),
  }),
  'enumeration.not-found': countSpec('404s (ROUTE_UNKNOWN and upstream 404) over the window and their share: guessing resource ids or paths.', 'medium', 30, '404s', 0.5, '404s'),
  'enumeration.forbidden': obj('Authorization denials (AUTHZ_* and upstream 403) together with unusually many distinct paths over the window: an identity walking resources it may not read. Denials on the client\'s usual paths (a policy that does not grant what a client asks for) never fire it.', {
    enabled,
    window: windowRef('medium'),
    minCount: int(30, 1, 'Floor: authorization denials in the window, events. Default 30.'),
    minRatio: num(0.5, 0, 'Denials must be at least this share of the client\'s requests in the window, fraction. Default 0.5.', 1),
    minDistinct: int(30, 1, 'Floor: distinct paths the client requested in the window (HyperLogLog estimate over the enumeration.paths window), paths. Default 30.'),
    ratio: num(4, 1, 'Distinct paths must also exceed this multiple of the client\'s usual distinct paths per window (its enumeration.paths baseline, once it has enumeration.paths.minSamples samples), ×. Default 4.'),
    sigma: num(6, 0, 'Distinct paths must also exceed the client\'s usual number by this many standard deviations, σ. Default 6.'),
  }),
  'probing.schema': countSpec('Schema violations and malformed requests (SCHEMA_VIOLATION, BODY_*, CONTENT_TYPE_NOT_ALLOWED, PATH_INVALID, ...) over the window: probing.', 'medium', 15, 'violations', 0.2, 'Violations'),
  'probing.size': obj('Request bodies far larger than the client\'s usual size (log-scale EWMA): payload probing. Counts outliers over the window.', {
    enabled,
    requireWarmup: warmupOnly,
    window: windowRef('medium'),
    minCount: int(5, 1, 'Floor: outlying requests in the window, events. Default 5.'),
    minBytes: int(8192, 0, 'A body smaller than this is never an outlier, bytes. Default 8192.'),
    sigma: num(4, 0, 'A body is an outlier above the client\'s log2 size mean + this many σ (σ at least 0.5), σ. Default 4.'),
    minSamples: int(20, 1, 'Bodies the client must have sent before its size baseline is used, requests. Default 20.'),
    halfLifeSamples: int(500, 2, 'Half-life of the client\'s body size baseline, requests with a body. Default 500.'),
  }),
  'population.requests': populationSpec('requests', 100, 8),
  'population.auth-failures': populationSpec('authentication failures (401)', 20, 8),
  'population.not-found': populationSpec('404s', 30, 8),
  'population.violations': populationSpec('schema violations', 15, 8),
});
