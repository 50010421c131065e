/**
 * A streaming scanner of JSON structure: nesting depth, number of object
 * keys, and keys that pollute prototypes when a service merges the parsed
 * object (__proto__, and constructor.prototype). It reads bytes as they
 * arrive, so a body that is streamed to the service (not buffered) is
 * checked too, and cut off the moment it breaks a limit.
 *
 * It is not a JSON validator: it tracks strings (with escapes), brackets and
 * keys, nothing else. Keys are compared after unescaping, so
 * "\u005f_proto__" is caught as well.
 */

export type JsonViolation =
  | { readonly kind: 'depth'; readonly limit: number }
  | { readonly kind: 'keys'; readonly limit: number }
  | { readonly kind: 'forbidden-key'; readonly key: '__proto__' | 'constructor.prototype' };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
/** Longest raw key that can still spell "constructor" (11 chars, each up to 6 bytes as a \\u escape with four hex digits). */
const MAX_KEY_CAPTURE = 66;

export class JsonScanner {
  readonly #maxDepth: number;
  readonly #maxKeys: number;
  #depth = 0;
  #keys = 0;
  /**
   * Container kinds by depth: 1 = object, 2 = array; 3 = object that is a "constructor" value.
   * A plain array, not a Uint8Array: a typed array's backing store costs ~0.8 µs to allocate,
   * a quarter of scanning a 1 KB body, and a scanner is made per request.
   */
  readonly #stack: number[] = [];
  #inString = false;
  #escape = false;
  #isKey = false;
  #keyExpected = false;
  #key: number[] = [];
  #keyOverflow = false;
  #keyEscaped = false;
  /** The last key was "constructor" and its value has not started yet. */
  #ctorPending = false;
  #violation: JsonViolation | null = null;

  constructor(maxDepth: number, maxKeys: number) {
    this.#maxDepth = maxDepth;
    this.#maxKeys = maxKeys;
  }

  get violation(): JsonViolation | null {
    return this.#violation;
  }

  /** Scans the next bytes; returns the first violation found (and keeps returning it). */
  push(buf: Uint8Array): JsonViolation | null {
    if (this.#violation) return this.#violation;
    const end = buf.length;
    let i = 0;
    while (i < end) {
      if (this.#inString) {
        i = this.#isKey ? this.#keyBytes(buf, i, end) : this.#skipString(buf, i, end);
        if (this.#violation) return this.#violation;
        continue;
      }
      const c = buf[i] as number;
      i++;
      switch (c) {
        case QUOTE:
          this.#inString = true;
          this.#isKey = this.#keyExpected;
          this.#keyExpected = false;
          if (this.#isKey) {
            this.#key.length = 0;
            this.#keyOverflow = false;
            this.#keyEscaped = false;
          } else this.#ctorPending = false;
          break;
        case LBRACE:
        case LBRACKET: {
          if (++this.#depth > this.#maxDepth) return (this.#violation = { kind: 'depth', limit: this.#maxDepth });
          this.#stack[this.#depth] = c === LBRACKET ? 2 : this.#ctorPending ? 3 : 1;
          this.#ctorPending = false;
          this.#keyExpected = c === LBRACE;
          break;
        }
        case RBRACE:
        case RBRACKET:
          if (this.#depth > 0) this.#depth--;
          this.#keyExpected = false;
          this.#ctorPending = false;
          break;
        case COMMA:
          this.#keyExpected = this.#stack[this.#depth] === 1 || this.#stack[this.#depth] === 3;
          this.#ctorPending = false;
          break;
        case COLON:
          break;
        default:
          // Whitespace keeps a pending "constructor" value; anything else is a scalar value.
          if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) this.#ctorPending = false;
      }
    }
    return null;
  }

  /** Inside a string value: find the closing quote (escapes skip the next byte). */
  #skipString(buf: Uint8Array, i: number, end: number): number {
    let escape = this.#escape;
    for (; i < end; i++) {
      const c = buf[i] as number;
      if (escape) escape = false;
      else if (c === BACKSLASH) escape = true;
      else if (c === QUOTE) {
        this.#escape = false;
        this.#inString = false;
        return i + 1;
      }
    }
    this.#escape = escape;
    return end;
  }

  /**
   * Inside a key. The common case (the whole key in this chunk, no escapes)
   * is compared in place; otherwise the raw bytes are collected (bounded)
   * and unescaped when the key closes.
   */
  #keyBytes(buf: Uint8Array, i: number, end: number): number {
    const start = i;
    let escape = this.#escape;
    for (; i < end; i++) {
      const c = buf[i] as number;
      if (escape) {
        escape = false;
        this.#keyEscaped = true;
      } else if (c === BACKSLASH) {
        escape = true;
        this.#keyEscaped = true;
      } else if (c === QUOTE) {
        this.#escape = false;
        this.#inString = false;
        if (this.#key.length === 0 && !this.#keyEscaped && !this.#keyOverflow) this.#endKey(keyIn(buf, start, i));
        else {
          this.#collect(buf, start, i);
          this.#endKey(this.#collectedKey());
        }
        return i + 1;
      }
    }
    this.#escape = escape;
    this.#collect(buf, start, end);
    return end;
  }

  #collect(buf: Uint8Array, from: number, to: number): void {
    for (let k = from; k < to; k++) {
      if (this.#key.length < MAX_KEY_CAPTURE) this.#key.push(buf[k] as number);
      else this.#keyOverflow = true;
    }
  }

  /** The collected key, unescaped; null when it cannot be a forbidden name. */
  #collectedKey(): Forbidden | null {
    if (this.#keyOverflow || this.#key.length < 9) return null;
    let key = String.fromCharCode(...this.#key);
    if (this.#keyEscaped) {
      try {
        key = JSON.parse(`"${key}"`) as string;
      } catch {
        return null;
      }
    }
    return key === '__proto__' || key === 'constructor' || key === 'prototype' ? key : null;
  }

  #endKey(name: Forbidden | null): void {
    if (++this.#keys > this.#maxKeys) {
      this.#violation = { kind: 'keys', limit: this.#maxKeys };
      return;
    }
    this.#ctorPending = false;
    if (name === '__proto__') this.#violation = { kind: 'forbidden-key', key: '__proto__' };
    else if (name === 'constructor') this.#ctorPending = true;
    else if (name === 'prototype' && this.#stack[this.#depth] === 3) this.#violation = { kind: 'forbidden-key', key: 'constructor.prototype' };
  }
}

type Forbidden = '__proto__' | 'constructor' | 'prototype';

const PROTO = Buffer.from('__proto__');
const CTOR = Buffer.from('constructor');
const PROTOTYPE = Buffer.from('prototype');

function same(buf: Uint8Array, from: number, word: Uint8Array): boolean {
  for (let k = 0; k < word.length; k++) if (buf[from + k] !== word[k]) return false;
  return true;
}

/** A key wholly inside `buf[from, to)` without escapes: which forbidden name it is, if any. */
function keyIn(buf: Uint8Array, from: number, to: number): Forbidden | null {
  const len = to - from;
  if (len === 9) return same(buf, from, PROTO) ? '__proto__' : same(buf, from, PROTOTYPE) ? 'prototype' : null;
  if (len === 11) return same(buf, from, CTOR) ? 'constructor' : null;
  return null;
}
