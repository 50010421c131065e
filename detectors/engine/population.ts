/**
 * The population model: for each route template, the distribution of what
 * one client does on it in one epoch (requests, failures, 404s, violations),
 * as EWMA mean and variance of log(1 + count) over finished client epochs.
 * The log scale keeps a few heavy clients from dominating. A route with too
 * few samples falls back to the aggregate over every route ("*").
 */
import { Ewma, alphaForHalfLife } from './baseline.ts';
import { SERIES_WIDTH } from './client-state.ts';

export const ANY_ROUTE = '*';
/** Route label of requests that matched no route template. */
export const NO_ROUTE = '(none)';
/** Where routes beyond maxRoutes are counted. */
export const OTHER_ROUTE = '(other)';

export class RouteModel {
  readonly stats: Ewma[] = Array.from({ length: SERIES_WIDTH }, () => new Ewma());
}

export interface PopulationOptions {
  readonly minSamples: number;
  readonly halfLifeSamples: number;
  readonly maxRoutes: number;
  /** Samples are learned at most up to exp(mean + clampSigma * sd) - 1 once a route is warm. */
  readonly clampSigma: number;
}

export class PopulationModel {
  readonly routes = new Map<string, RouteModel>();
  readonly any = new RouteModel();
  private readonly alpha: number;
  private readonly o: PopulationOptions;

  constructor(o: PopulationOptions) {
    this.o = o;
    this.alpha = alphaForHalfLife(o.halfLifeSamples);
  }

  /** Route key under the model's bound. */
  routeKey(route: string | null): string {
    const r = route ?? NO_ROUTE;
    if (this.routes.has(r) || this.routes.size < this.o.maxRoutes) return r;
    return OTHER_ROUTE;
  }

  /** One finished client epoch on a route: counts[m] for each metric slot. */
  sample(route: string, counts: Float64Array, offset: number): void {
    let model = this.routes.get(route);
    if (!model) {
      model = new RouteModel();
      this.routes.set(route, model);
    }
    for (let m = 0; m < SERIES_WIDTH; m++) {
      const x = counts[offset + m]!;
      this.learn(model.stats[m]!, x);
      this.learn(this.any.stats[m]!, x);
    }
  }

  private learn(s: Ewma, x: number): void {
    let y = Math.log1p(x);
    if (s.n >= this.o.minSamples) {
      const limit = s.mean + this.o.clampSigma * s.sd;
      if (y > limit) y = limit;
    }
    s.add(y, this.alpha);
  }

  /** The model to judge metric m on this route: the route's when warm, else the aggregate's, else null. */
  statsFor(route: string, m: number): { stats: Ewma; route: string } | null {
    const own = this.routes.get(route)?.stats[m];
    if (own && own.n >= this.o.minSamples) return { stats: own, route };
    const any = this.any.stats[m]!;
    if (any.n >= this.o.minSamples) return { stats: any, route: ANY_ROUTE };
    return null;
  }

  toJSON(): { routes: [string, number[][]][]; any: number[][] } {
    return {
      routes: [...this.routes].map(([r, m]) => [r, m.stats.map((s) => s.toJSON())]),
      any: this.any.stats.map((s) => s.toJSON()),
    };
  }

  load(j: { routes: [string, number[][]][]; any: number[][] }): void {
    this.routes.clear();
    for (const [r, stats] of j.routes) {
      const model = new RouteModel();
      stats.forEach((s, i) => model.stats[i]?.load(s));
      this.routes.set(r, model);
    }
    j.any.forEach((s, i) => this.any.stats[i]?.load(s));
  }

  /** Samples behind the aggregate (how warm the model is). */
  get samples(): number {
    return this.any.stats[0]!.n;
  }
}
