/**
 * Messages between the sidecar's request thread and the decision-sink thread
 * (sink.ts and thread.ts), sent with postMessage. Records travel as JSON lines
 * (wireLine below); everything else is structured-cloned.
 */
import type { Code } from '../../../errors/codes.ts';
import type { QuotaCharge, StageName, StageTiming, WouldDeny } from '../../../pipeline/types.ts';
import type { EventDetail } from '../../encode.ts';
import type { KafkaSinkSettings } from '../kafka/index.ts';
import type { DecisionRecord } from '../../record.ts';
import type { SinkStats } from '../../sink.ts';

/** Which sink the thread runs, and what it needs to open it. */
export type InnerSinkSpec =
  | { readonly kind: 'ndjson'; readonly target: string; readonly detail?: EventDetail }
  | { readonly kind: 'kafka'; readonly settings: KafkaSinkSettings };

export interface ThreadData {
  readonly spec: InnerSinkSpec;
  /** pino level of the sidecar's logger: the thread does not even format what would be discarded. */
  readonly logLevel: string;
}

/**
 * A record on its way to the thread, as one line of JSON text: an array of its fields in a
 * fixed order (WIRE below), not an object. Its identity, TLS facts and policy are objects
 * shared by every request of one caller, connection or policy (authn, tls/peer.ts and the
 * policy loader memoize them): each is cloned once, sent as a definition the first time it is
 * seen, and referred to by number after that. Cloning them with every record cost more than
 * the encoding the thread takes over (~11 µs per record measured, against ~9 µs with
 * references).
 *
 * Why JSON text, and why an array: JSON.stringify and one string copy cost less than
 * structured-cloning the same object graph, which writes every property name of every object
 * again; and the same holds for JSON text itself. The benchmark's allowed record as an object
 * with references was 950 bytes and took 2.7-3.4 µs to stringify and 4.0 µs to parse; as this
 * array, 448 bytes, 1.5 µs and 1.8 µs (in process, one core). A batch's lines go as one
 * string.
 */
type WireLine = [
  id: string,
  requestId: string,
  traceId: string | null,
  time: number,
  durationMs: number,
  verdict: DecisionRecord['verdict'],
  decidedBy: DecisionRecord['decidedBy'],
  code: DecisionRecord['code'],
  rule: string | null,
  /** stage, code, rule of each would-deny, flattened. */
  wouldDeny: (string | null)[],
  identity: number | null,
  clientIp: string,
  clientPort: number,
  forwardedFor: readonly string[],
  serverIp: string,
  serverPort: number,
  tls: number | null,
  method: string,
  path: string,
  host: string,
  scheme: DecisionRecord['request']['scheme'],
  httpVersion: string,
  userAgent: string | null,
  contentType: string | null,
  route: string | null,
  params: DecisionRecord['request']['params'],
  bytesIn: number,
  status: number,
  bytesOut: number,
  /** stage, us, outcome of each stage timing, flattened. */
  stages: (string | number)[],
  upstreamMs: number | null,
  policy: number | null,
  detail: string | null,
  /** null when the record has none (the property is then absent, as in the record). */
  quotas: readonly QuotaCharge[] | null,
];

/** The JSON line of `r`, its shared objects replaced by the references given. */
export function wireLine(r: DecisionRecord, identity: number | null, tls: number | null, policy: number | null): string {
  const q = r.request;
  const wd: (string | null)[] = [];
  for (const w of r.wouldDeny) wd.push(w.stage, w.code, w.rule);
  const st: (string | number)[] = [];
  for (const t of r.stages) st.push(t.stage, t.us, t.outcome);
  const line: WireLine = [
    r.id, r.requestId, r.traceId, r.time, r.durationMs, r.verdict, r.decidedBy, r.code, r.rule, wd,
    identity, r.client.ip, r.client.port, r.client.forwardedFor, r.server.ip, r.server.port, tls,
    q.method, q.path, q.host, q.scheme, q.httpVersion, q.userAgent, q.contentType, q.route, q.params, q.bytesIn,
    r.response.status, r.response.bytesOut, st, r.upstreamMs, policy, r.detail, r.quotas ?? null,
  ];
  return JSON.stringify(line);
}

/**
 * The record of a JSON line from wireLine, with its shared objects looked up by reference:
 * the same properties, in the same order, as the record it was made from.
 */
export function fromWireLine(text: string, lookup: (ref: number | null) => object | null): DecisionRecord {
  const w = JSON.parse(text) as WireLine;
  const wouldDeny: WouldDeny[] = [];
  const wd = w[9];
  for (let i = 0; i + 2 < wd.length; i += 3) wouldDeny.push({ stage: wd[i] as StageName, code: wd[i + 1] as Code, rule: wd[i + 2] as string | null });
  const stages: StageTiming[] = [];
  const st = w[29];
  for (let i = 0; i + 2 < st.length; i += 3) stages.push({ stage: st[i] as StageName, us: st[i + 1] as number, outcome: st[i + 2] as StageTiming['outcome'] });
  const record: DecisionRecord = {
    id: w[0],
    requestId: w[1],
    traceId: w[2],
    time: w[3],
    durationMs: w[4],
    verdict: w[5],
    decidedBy: w[6],
    code: w[7],
    rule: w[8],
    wouldDeny,
    identity: lookup(w[10]) as DecisionRecord['identity'],
    client: { ip: w[11], port: w[12], forwardedFor: w[13] },
    server: { ip: w[14], port: w[15] },
    tls: lookup(w[16]) as DecisionRecord['tls'],
    request: { method: w[17], path: w[18], host: w[19], scheme: w[20], httpVersion: w[21], userAgent: w[22], contentType: w[23], route: w[24], params: w[25], bytesIn: w[26] },
    response: { status: w[27], bytesOut: w[28] },
    stages,
    upstreamMs: w[30],
    policy: lookup(w[31]) as DecisionRecord['policy'],
    detail: w[32],
  };
  const quotas = w[33];
  return quotas === null ? record : { ...record, quotas };
}

export type ToThread =
  | {
      readonly t: 'batch';
      /** Shared objects first seen in this batch: [reference, object]. Applied before the records. */
      readonly defs: readonly (readonly [number, object])[];
      /**
       * Each record's wireLine, one per line (JSON text has no raw newline). A string, not
       * UTF-8 bytes in a transferred buffer: encoding, transferring and decoding 40 lines cost
       * both threads 0.5-0.7 µs per record, cloning the string 0.27-0.34 (in process).
       */
      readonly records: string;
      /** How many records `records` holds. */
      readonly count: number;
      /** References whose objects the request thread no longer holds (garbage-collected). Applied after the records. */
      readonly forget: readonly number[];
    }
  | { readonly t: 'flush'; readonly id: number }
  | { readonly t: 'close'; readonly id: number }
  /** A `stdout` chunk is written (or failed: `error`). */
  | { readonly t: 'written'; readonly id: number; readonly error?: string };

export type FromThread =
  /** The inner sink is open (or could not be: `error`). */
  | { readonly t: 'ready'; readonly error?: string }
  /** The inner sink's running totals, every 100 ms while they change (and in every `done`). */
  | { readonly t: 'stats'; readonly stats: SinkStats }
  | { readonly t: 'done'; readonly id: number; readonly stats: SinkStats; readonly error?: string }
  /** One pino line of the thread's logger; the request thread's logger writes it. */
  | { readonly t: 'log'; readonly line: string }
  /**
   * NDJSON bytes for the process's standard output, which the request thread writes
   * (process.stdout handles a slow reader; a worker writing to fd 1 itself lost the tail of
   * a chunk under load, most likely a write a non-blocking pipe refused). One message per buffer of lines
   * (up to 256 KiB), answered with `written`.
   */
  | { readonly t: 'stdout'; readonly id: number; readonly bytes: Uint8Array };
