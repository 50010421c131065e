/**
 * Per-pod overrides: `palisade.dev/*` annotations on the pod (template) win over
 * the injector's options. Values are checked here, so a typo is an error that
 * names the annotation instead of a pod that never starts.
 */
import { InjectError } from './errors.ts';
import type { InjectOptions } from './options.ts';
import { ANNOTATIONS, DNS1123_SUBDOMAIN_PATTERN, QUANTITY_PATTERN, type CertSource } from './names.ts';

/** Everything that decides the sidecar of one pod. */
export interface PodSettings {
  readonly policyConfigMap: string;
  readonly listenPort: number;
  readonly adminPort: number;
  /** From palisade.dev/upstream-port; otherwise the injector takes the app's first port. */
  readonly upstreamPort: number | undefined;
  readonly cpuRequest: string;
  readonly cpuLimit: string;
  readonly memoryRequest: string;
  readonly memoryLimit: string;
  readonly certSource: CertSource;
  readonly tlsSecret: string;
  readonly logLevel: string;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const dns1123 = new RegExp(DNS1123_SUBDOMAIN_PATTERN);
const quantity = new RegExp(QUANTITY_PATTERN);

export function podSettings(annotations: Readonly<Record<string, unknown>>, opts: InjectOptions, where: string): PodSettings {
  const read = (key: string): string | undefined => {
    const v = annotations[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw bad(where, key, v, 'must be a string (quote it in YAML)');
    return v;
  };
  const port = (key: string): number | undefined => {
    const v = read(key);
    if (v === undefined) return undefined;
    if (!/^[0-9]{1,5}$/.test(v) || Number(v) < 1 || Number(v) > 65535) throw bad(where, key, v, 'must be a port number 1-65535');
    return Number(v);
  };
  const qty = (key: string, fallback: string): string => {
    const v = read(key);
    if (v === undefined) return fallback;
    if (!quantity.test(v)) throw bad(where, key, v, 'must be a Kubernetes quantity such as 250m, 1, 128Mi or 1Gi');
    return v;
  };
  const name = (key: string): string | undefined => {
    const v = read(key);
    if (v !== undefined && !dns1123.test(v)) throw bad(where, key, v, 'must be a lowercase DNS-1123 name');
    return v;
  };

  const tlsSecret = name(ANNOTATIONS.tlsSecret);
  const logLevel = read(ANNOTATIONS.logLevel);
  if (logLevel !== undefined && !LOG_LEVELS.includes(logLevel)) throw bad(where, ANNOTATIONS.logLevel, logLevel, `must be one of ${LOG_LEVELS.join(', ')}`);

  const s: PodSettings = {
    policyConfigMap: name(ANNOTATIONS.policy) ?? opts.policyConfigMap,
    listenPort: port(ANNOTATIONS.listenPort) ?? opts.listenPort,
    adminPort: port(ANNOTATIONS.adminPort) ?? opts.adminPort,
    upstreamPort: port(ANNOTATIONS.upstreamPort),
    cpuRequest: qty(ANNOTATIONS.cpuRequest, opts.cpuRequest),
    cpuLimit: qty(ANNOTATIONS.cpuLimit, opts.cpuLimit),
    memoryRequest: qty(ANNOTATIONS.memoryRequest, opts.memoryRequest),
    memoryLimit: qty(ANNOTATIONS.memoryLimit, opts.memoryLimit),
    // Naming a Secret is choosing it as the certificate source.
    certSource: tlsSecret !== undefined ? 'secret' : opts.certSource,
    tlsSecret: tlsSecret ?? opts.tlsSecret,
    logLevel: logLevel ?? opts.logLevel,
  };
  if (s.listenPort === s.adminPort) {
    throw new InjectError('INJECT_ANNOTATION_INVALID', `${where}: the sidecar's listen port and admin port are both ${s.listenPort}; set ${ANNOTATIONS.listenPort} or ${ANNOTATIONS.adminPort} to another port`);
  }
  // The API server rejects a request above its limit; say so before it does.
  if (quantityValue(s.cpuRequest) > quantityValue(s.cpuLimit)) {
    throw new InjectError('INJECT_ANNOTATION_INVALID', `${where}: sidecar CPU request ${s.cpuRequest} is above its limit ${s.cpuLimit}; adjust ${ANNOTATIONS.cpuRequest} or ${ANNOTATIONS.cpuLimit}`);
  }
  if (quantityValue(s.memoryRequest) > quantityValue(s.memoryLimit)) {
    throw new InjectError('INJECT_ANNOTATION_INVALID', `${where}: sidecar memory request ${s.memoryRequest} is above its limit ${s.memoryLimit}; adjust ${ANNOTATIONS.memoryRequest} or ${ANNOTATIONS.memoryLimit}`);
  }
  return s;
}

function bad(where: string, key: string, value: unknown, why: string): InjectError {
  return new InjectError('INJECT_ANNOTATION_INVALID', `${where}: annotation ${key}: ${JSON.stringify(value)} ${why}`);
}

const SUFFIX: Readonly<Record<string, number>> = {
  '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** A quantity matching QUANTITY_PATTERN as a number (cores or bytes). */
export function quantityValue(q: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)([a-zA-Z]*)$/.exec(q);
  if (!m) return Number.NaN;
  return Number(m[1]) * (SUFFIX[m[2] ?? ''] ?? Number.NaN);
}
