/**
 * Messages between the sidecar's request thread and the decision-sink thread
 * (sink.ts and thread.ts), sent with postMessage. Records travel as JSON lines
 * (WireRecord below); everything else is structured-cloned.
 */
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
 * A record on its way to the thread. Its identity, TLS facts and policy are
 * objects shared by every request of one caller, connection or policy (authn,
 * tls/peer.ts and the policy loader memoize them): each is cloned once, sent
 * as a definition the first time it is seen, and referred to by number after
 * that. Cloning them with every record cost more than the encoding the thread
 * takes over (~11 µs per record measured, against ~9 µs with references).
 * The rest travels as JSON text (DecisionRecord is plain JSON data: strings,
 * finite numbers, null, arrays, objects): JSON.stringify and one string copy
 * cost less than structured-cloning the same object graph, which writes every
 * property name of every object again; a batch's lines go as one transferred
 * buffer.
 */
export type WireRecord = Omit<DecisionRecord, 'identity' | 'tls' | 'policy'> & {
  readonly identity: number | null;
  readonly tls: number | null;
  readonly policy: number | null;
};

export type ToThread =
  | {
      readonly t: 'batch';
      /** Shared objects first seen in this batch: [reference, object]. Applied before the records. */
      readonly defs: readonly (readonly [number, object])[];
      /** UTF-8 JSON text of each WireRecord, one per line (JSON text has no raw newline); transferred, not copied. */
      readonly records: Uint8Array;
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
