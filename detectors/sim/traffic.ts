/**
 * A seeded generator of labelled API traffic: benign clients of several
 * profiles (steady, bursty UI, batch jobs, flaky tokens, uploaders, heavy
 * partners) and injected attacks (flood, credential stuffing, slow stuffing,
 * enumeration, scraping, probing). The same schedule drives the engine
 * benchmark (as decision records) and the live tests (as real requests).
 *
 * The API it talks to (the test upstream implements it):
 *   GET  /orders/{id}     200 for id 1..1000, else 404
 *   GET  /products/{id}   200 for id 1..5000, else 404
 *   GET  /products        200
 *   POST /orders          201 (a JSON body); a body marked bad is a schema violation
 *   POST /login           200 with the right password, else 401
 */
import { Rng } from './random.ts';

export type Outcome = 'ok' | 'auth-fail' | 'not-found' | 'violation';

export const BENIGN_PROFILES = ['steady', 'bursty', 'batch', 'flaky', 'uploader', 'partner'] as const;
export type BenignProfile = (typeof BENIGN_PROFILES)[number];
export const ATTACKS = ['flood', 'stuffing', 'slow-stuffing', 'enumeration', 'scraping', 'probing'] as const;
export type AttackKind = (typeof ATTACKS)[number];

export interface SimClient {
  readonly index: number;
  readonly name: string;
  readonly profile: BenignProfile;
  /** The attack this client runs, if it is an attacker. */
  readonly attack: AttackKind | null;
  /** Attack start and end, ms from the start of the run (attackers only). */
  readonly attackStart: number;
  readonly attackEnd: number;
  /** Source IP (distinct per client, 127/8 so tests can bind it) and SPIFFE ID. */
  readonly ip: string;
  readonly spiffeId: string;
}

export interface SimRequest {
  /** ms from the start of the run. */
  readonly t: number;
  readonly client: number;
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly route: string;
  readonly outcome: Outcome;
  readonly bytesIn: number;
  /** Part of the attack (false for the attacker's benign phase). */
  readonly attack: boolean;
}

export interface TrafficOptions {
  readonly seed: number;
  readonly durationMs: number;
  /** Benign clients (profiles cycle through BENIGN_PROFILES, or the given list). */
  readonly benign: number;
  readonly profiles?: readonly BenignProfile[];
  /** Attacks to inject; each gets its own client. */
  readonly attacks?: readonly AttackSpec[];
  /** Scale benign request rates (1 = as designed). */
  readonly rateScale?: number;
  /** First client index (to make IPs/names unique across runs). */
  readonly firstIndex?: number;
}

export interface AttackSpec {
  readonly kind: AttackKind;
  /** ms from the start of the run. */
  readonly start: number;
  readonly durationMs: number;
  /** Requests per second of the attack; a per-kind default otherwise. */
  readonly rate?: number;
  /** Behave like this benign profile before the attack (a known client turning bad). Default: new client. */
  readonly warmAs?: BenignProfile;
}

export interface Traffic {
  readonly clients: readonly SimClient[];
  /** Every request, ordered by time. */
  readonly requests: readonly SimRequest[];
}

const DEFAULT_RATE: Readonly<Record<AttackKind, number>> = {
  flood: 300,
  stuffing: 40,
  'slow-stuffing': 0.2,
  enumeration: 25,
  scraping: 20,
  probing: 8,
};

/** 127.x.y.z from a client index, avoiding 127.0.0.1 (the servers' address). */
export function clientIp(index: number): string {
  const n = index + 2;
  return `127.${10 + ((n >> 16) & 0xff)}.${(n >> 8) & 0xff}.${n & 0xff}`;
}

type Emit = (t: number, method: 'GET' | 'POST', path: string, route: string, outcome: Outcome, bytesIn: number) => void;

function orderRead(rng: Rng, own: readonly number[], emit: Emit, t: number, notFoundP: number): void {
  if (rng.chance(notFoundP)) emit(t, 'GET', `/orders/${rng.int(1001, 99999)}`, '/orders/{id}', 'not-found', 0);
  else emit(t, 'GET', `/orders/${rng.pick(own)}`, '/orders/{id}', 'ok', 0);
}

function productRead(rng: Rng, emit: Emit, t: number, hot: number): void {
  if (rng.chance(0.3)) emit(t, 'GET', '/products', '/products', 'ok', 0);
  else emit(t, 'GET', `/products/${rng.int(1, hot)}`, '/products/{id}', 'ok', 0);
}

function login(rng: Rng, emit: Emit, t: number, fail: boolean): void {
  emit(t, 'POST', '/login', '/login', fail ? 'auth-fail' : 'ok', rng.int(50, 90));
}

/** Benign behaviour of one profile between from and to (ms). */
function benign(profile: BenignProfile, rng: Rng, emit: Emit, from: number, to: number, scale: number): void {
  const own = Array.from({ length: rng.int(5, 30) }, () => rng.int(1, 1000));
  let t = from + rng.uniform(0, 2000);
  login(rng, emit, t, rng.chance(0.05));
  switch (profile) {
    case 'steady': {
      const rate = rng.uniform(0.3, 3) * scale;
      for (t += rng.exp(rate) * 1000; t < to; t += rng.exp(rate) * 1000) {
        if (rng.chance(0.6)) orderRead(rng, own, emit, t, 0.02);
        else productRead(rng, emit, t, 300);
        if (rng.chance(0.002)) login(rng, emit, t + 5, rng.chance(0.2));
      }
      return;
    }
    case 'bursty': {
      // A UI: a slow trickle, and page loads that fire 8-35 requests within about a second.
      const rate = rng.uniform(0.2, 1) * scale;
      let nextBurst = t + rng.exp(1 / 20) * 1000;
      for (t += rng.exp(rate) * 1000; t < to; t += rng.exp(rate) * 1000) {
        while (nextBurst < t && nextBurst < to) {
          const n = Math.round(rng.int(8, 35) * scale);
          const span = rng.uniform(500, 1500);
          for (let i = 0; i < n; i++) {
            const bt = nextBurst + rng.uniform(0, span);
            if (bt >= to) continue;
            if (rng.chance(0.5)) orderRead(rng, own, emit, bt, 0.01);
            else productRead(rng, emit, bt, 500);
          }
          nextBurst += span + rng.exp(1 / 25) * 1000;
        }
        if (rng.chance(0.5)) orderRead(rng, own, emit, t, 0.02);
        else productRead(rng, emit, t, 500);
      }
      return;
    }
    case 'batch': {
      // A job: every 30-90 s a run of 20-80 reads at 5-15/s over a wide id range, idle in between.
      for (t += rng.uniform(1000, 20000); t < to; t += rng.uniform(30000, 90000)) {
        const n = Math.round(rng.int(20, 80) * scale);
        const rate = rng.uniform(5, 15);
        let bt = t;
        for (let i = 0; i < n && bt < to; i++, bt += rng.exp(rate) * 1000) {
          emit(bt, 'GET', `/orders/${rng.int(1, 1000)}`, '/orders/{id}', 'ok', 0);
        }
      }
      return;
    }
    case 'flaky': {
      // A mobile app: low rate, and now and then an expired token: a few 401s, then a new login.
      const rate = rng.uniform(0.1, 0.8) * scale;
      for (t += rng.exp(rate) * 1000; t < to; t += rng.exp(rate) * 1000) {
        if (rng.chance(0.03)) {
          const n = rng.int(2, 5);
          for (let i = 0; i < n; i++) emit(t + i * 200, 'GET', `/orders/${rng.pick(own)}`, '/orders/{id}', 'auth-fail', 0);
          login(rng, emit, t + n * 200 + 300, rng.chance(0.3));
          continue;
        }
        orderRead(rng, own, emit, t, 0.03);
      }
      return;
    }
    case 'uploader': {
      const rate = rng.uniform(0.2, 1.5) * scale;
      for (t += rng.exp(rate) * 1000; t < to; t += rng.exp(rate) * 1000) {
        if (rng.chance(0.5)) {
          const size = Math.round(Math.min(200_000, rng.logNormal(1200, rng.chance(0.02) ? 1.5 : 0.5)));
          emit(t, 'POST', '/orders', '/orders', rng.chance(0.01) ? 'violation' : 'ok', size);
        } else orderRead(rng, own, emit, t, 0.02);
      }
      return;
    }
    case 'partner': {
      // An integration partner: steady and heavy (5-12/s), over the whole catalogue.
      const rate = rng.uniform(5, 12) * scale;
      for (t += rng.exp(rate) * 1000; t < to; t += rng.exp(rate) * 1000) {
        emit(t, 'GET', `/products/${rng.int(1, 5000)}`, '/products/{id}', 'ok', 0);
      }
      return;
    }
  }
}

function attack(kind: AttackKind, rng: Rng, emit: Emit, from: number, to: number, rate: number): void {
  const step = () => rng.exp(rate) * 1000;
  let seq = rng.int(1, 500);
  for (let t = from; t < to; t += step()) {
    switch (kind) {
      case 'flood':
        if (rng.chance(0.5)) emit(t, 'GET', `/orders/${rng.int(1, 1000)}`, '/orders/{id}', 'ok', 0);
        else emit(t, 'GET', '/products', '/products', 'ok', 0);
        break;
      case 'stuffing':
      case 'slow-stuffing':
        login(rng, emit, t, !rng.chance(0.002));
        break;
      case 'enumeration': {
        seq += rng.int(1, 3);
        emit(t, 'GET', `/orders/${seq}`, '/orders/{id}', seq <= 1000 && rng.chance(0.3) ? 'ok' : 'not-found', 0);
        break;
      }
      case 'scraping':
        emit(t, 'GET', `/products/${rng.int(1, 5000)}`, '/products/{id}', 'ok', 0);
        break;
      case 'probing':
        if (rng.chance(0.6)) emit(t, 'POST', '/orders', '/orders', 'violation', rng.int(100, 4000));
        else emit(t, 'POST', '/orders', '/orders', 'ok', Math.round(rng.uniform(50_000, 500_000)));
        break;
    }
  }
}

export function generateTraffic(o: TrafficOptions): Traffic {
  const root = new Rng(o.seed);
  const profiles = o.profiles ?? BENIGN_PROFILES;
  const scale = o.rateScale ?? 1;
  const first = o.firstIndex ?? 0;
  const clients: SimClient[] = [];
  const requests: SimRequest[] = [];
  const add = (index: number, isAttack: () => boolean): Emit => (t, method, path, route, outcome, bytesIn) => {
    if (t >= 0 && t < o.durationMs) requests.push({ t, client: index, method, path, route, outcome, bytesIn, attack: isAttack() });
  };
  for (let i = 0; i < o.benign; i++) {
    const index = first + i;
    const profile = profiles[i % profiles.length] as BenignProfile;
    const rng = root.fork();
    clients.push({ index, name: `${profile}-${index}`, profile, attack: null, attackStart: 0, attackEnd: 0, ip: clientIp(index), spiffeId: `spiffe://sim.local/ns/apps/sa/${profile}-${index}` });
    benign(profile, rng, add(index, () => false), 0, o.durationMs, scale);
  }
  (o.attacks ?? []).forEach((a, j) => {
    const index = first + o.benign + j;
    const rng = root.fork();
    const profile = a.warmAs ?? 'steady';
    const end = Math.min(o.durationMs, a.start + a.durationMs);
    clients.push({ index, name: `${a.kind}-${index}`, profile, attack: a.kind, attackStart: a.start, attackEnd: end, ip: clientIp(index), spiffeId: `spiffe://sim.local/ns/ext/sa/${a.kind}-${index}` });
    if (a.warmAs) benign(a.warmAs, rng.fork(), add(index, () => false), 0, a.start, scale);
    attack(a.kind, rng, add(index, () => true), a.start, end, a.rate ?? DEFAULT_RATE[a.kind]);
  });
  requests.sort((x, y) => x.t - y.t);
  return { clients, requests };
}
