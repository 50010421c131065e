/**
 * A streaming scanner of JSON structure: nesting depth, number of object
 * keys, keys that pollute prototypes when a service merges the parsed
 * object (__proto__, and constructor.prototype), and a key that appears
 * twice in one object. It reads bytes as they arrive, so a body that is
 * streamed to the service (not buffered) is checked too, and cut off the
 * moment it breaks a limit.
 *
 * Duplicate keys are refused (as I-JSON, RFC 7493, requires) because parsers
 * disagree on them: JSON.parse, and so the schema check, keeps the last
 * value, while many parsers a service may use keep the first; a body could
 * pass validation with one value and be acted on with another.
 *
 * It is not a JSON validator: it tracks strings (with escapes), brackets and
 * keys, nothing else. Keys are compared after unescaping, so
 * "\u005f_proto__" is caught as well, and so are "a" and "\u0061" as one key.
 */

export type JsonViolation =
  | { readonly kind: 'depth'; readonly limit: number }
  | { readonly kind: 'keys'; readonly limit: number }
  | { readonly kind: 'forbidden-key'; readonly key: '__proto__' | 'constructor.prototype' }
  /** `key` only when it is short and plain (letters, digits, _ . -): it is client input, and goes into the answer and the event. */
  | { readonly kind: 'duplicate-key'; readonly key: string | null };

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;
/** A duplicate key is named in the violation only if it matches this (bounded, no markup or control bytes). */
const PLAIN_KEY = /^[A-Za-z0-9_.-]{1,64}$/;

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
  /**
   * A key that has escapes or spans chunks: its first MAX_KEY_CAPTURE raw bytes (a reused
   * array of numbers: copying pieces into Buffers doubled the cost of a body read in small
   * chunks), its length, and the running hashes of all its raw bytes, so a huge key in a
   * streamed body costs no memory.
   */
  readonly #key: number[] = [];
  #keyLen = 0;
  #keyA = 0;
  #keyB = 0;
  #keyEscaped = false;
  /**
   * The keys of the open objects, as two 30-bit hashes each (flat, innermost object last):
   * an object's keys start at #objStart[depth], and are dropped when it closes. Hashes, not
   * strings: decoding every key and a Set per object tripled the scanner's cost (bench/json-scan.ts).
   */
  readonly #h1: number[] = [];
  readonly #h2: number[] = [];
  /** Entries of #h1/#h2 in use (the arrays are not shrunk: setting an array's length is slow). */
  #top = 0;
  readonly #objStart: number[] = [];
  /** An object past SMALL_OBJECT keys also gets an index (52 bits of the two hashes -> position), by depth. */
  readonly #index: (Map<number, number> | undefined)[] = [];
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
    // A string or key the previous chunk left open.
    if (this.#inString) {
      i = this.#isKey ? this.#keyBytes(buf, 0, end) : this.#skipString(buf, 0, end);
      if (this.#violation) return this.#violation;
      if (this.#inString) return null;
    }
    // The state the loop touches most lives in locals, written back before a helper reads it
    // and when the chunk ends: field reads and writes per byte were most of the scan's cost.
    const stack = this.#stack;
    let depth = this.#depth;
    let keyExpected = this.#keyExpected;
    let ctorPending = this.#ctorPending;
    while (i < end) {
      const c = buf[i++] as number;
      if (c === QUOTE) {
        if (keyExpected) {
          keyExpected = false;
          // The usual key: whole in this chunk, no escapes; hashed while looking for its end.
          const start = i;
          let a = SEED1;
          let b = SEED2;
          let k = i;
          let d = 0;
          for (; k < end; k++) {
            d = buf[k] as number;
            if (d === QUOTE || d === BACKSLASH) break;
            a = Math.imul(a ^ d, FNV_PRIME);
            b = Math.imul(b ^ d, MIX_PRIME);
            b ^= b >>> 15;
          }
          this.#depth = depth;
          if (k < end && d === QUOTE) {
            finishHash(a, b, k - start);
            if (this.#endKey(keyIn(buf, start, k))) this.#duplicate(Buffer.from(buf.buffer, buf.byteOffset + start, k - start).toString('utf8'));
            if (this.#violation) return this.#violation;
            ctorPending = this.#ctorPending;
            i = k + 1;
            continue;
          }
          // Escaped, or cut by the chunk's end: collected and hashed byte by byte.
          this.#inString = true;
          this.#isKey = true;
          this.#escape = false;
          this.#keyLen = 0;
          this.#keyA = SEED1;
          this.#keyB = SEED2;
          this.#keyEscaped = false;
          i = this.#keyBytes(buf, start, end);
          if (this.#violation) return this.#violation;
          if (this.#inString) break;
          ctorPending = this.#ctorPending;
          continue;
        }
        // A string value: find its closing quote (a backslash skips the byte after it).
        ctorPending = false;
        for (; i < end; i++) {
          const d = buf[i] as number;
          if (d === QUOTE) break;
          if (d === BACKSLASH) i++;
        }
        if (i < end) {
          i++;
          continue;
        }
        // The string goes on in the next chunk; an escape cut at the chunk's end skips the next chunk's first byte.
        this.#inString = true;
        this.#isKey = false;
        this.#escape = i > end;
        break;
      }
      switch (c) {
        case LBRACE:
        case LBRACKET: {
          if (++depth > this.#maxDepth) {
            this.#depth = depth;
            return (this.#violation = { kind: 'depth', limit: this.#maxDepth });
          }
          stack[depth] = c === LBRACKET ? 2 : ctorPending ? 3 : 1;
          if (c === LBRACE) {
            this.#objStart[depth] = this.#top;
            this.#index[depth]?.clear();
          }
          ctorPending = false;
          keyExpected = c === LBRACE;
          break;
        }
        case RBRACE:
        case RBRACKET:
          if (c === RBRACE && stack[depth] !== 2) {
            // The object's keys are no longer needed; its parent's continue after them.
            this.#top = this.#objStart[depth] ?? 0;
          }
          if (depth > 0) depth--;
          keyExpected = false;
          ctorPending = false;
          break;
        case COMMA:
          keyExpected = stack[depth] === 1 || stack[depth] === 3;
          ctorPending = false;
          break;
        case COLON:
        case 0x20:
        case 0x0a:
        case 0x0d:
        case 0x09:
          // Whitespace keeps a pending "constructor" value.
          break;
        default:
          // Anything else is (part of) a scalar value.
          ctorPending = false;
      }
    }
    this.#depth = depth;
    this.#keyExpected = keyExpected;
    this.#ctorPending = ctorPending;
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
   * is decoded in place; otherwise the raw bytes are collected (the body's
   * size limit bounds them) and unescaped when the key closes.
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
        if (this.#keyLen === 0 && !this.#keyEscaped) {
          hashKey(buf, start, i);
          if (this.#endKey(keyIn(buf, start, i))) this.#duplicate(Buffer.from(buf.buffer, buf.byteOffset + start, i - start).toString('utf8'));
        } else {
          this.#collect(buf, start, i);
          this.#endCollectedKey();
        }
        return i + 1;
      }
    }
    this.#escape = escape;
    this.#collect(buf, start, end);
    return end;
  }

  /** Hashes the bytes into the running key hashes and copies the first ones (the caller may reuse the chunk once push() returns). */
  #collect(buf: Uint8Array, from: number, to: number): void {
    const key = this.#key;
    let n = this.#keyLen;
    let a = this.#keyA;
    let b = this.#keyB;
    for (let k = from; k < to; k++) {
      const c = buf[k] as number;
      a = Math.imul(a ^ c, FNV_PRIME);
      b = Math.imul(b ^ c, MIX_PRIME);
      b ^= b >>> 15;
      if (n < MAX_KEY_CAPTURE) key[n] = c;
      n++;
    }
    this.#keyLen = n;
    this.#keyA = a;
    this.#keyB = b;
  }

  /**
   * A collected key: without escapes, its running hashes are its hashes; with escapes it is
   * unescaped first (an invalid escape leaves it raw: the body is malformed, which the parser
   * reports), so "\u0072ole" and "role" are one key. An escaped key longer than
   * MAX_KEY_CAPTURE raw bytes is compared in its raw form (no service reads such a key).
   */
  #endCollectedKey(): void {
    const n = this.#keyLen;
    if (!this.#keyEscaped || n > MAX_KEY_CAPTURE) {
      finishHash(this.#keyA, this.#keyB, n);
      if (n > MAX_KEY_CAPTURE) {
        if (this.#endKey(null)) this.#duplicate('');
      } else if (this.#endKey(keyIn(this.#key, 0, n))) this.#duplicate(Buffer.from(this.#key.slice(0, n)).toString('utf8'));
      return;
    }
    const raw = Buffer.from(this.#key.slice(0, n)).toString('utf8');
    let key = raw;
    try {
      key = JSON.parse(`"${raw}"`) as string;
    } catch {
      // left raw
    }
    const bytes = Buffer.from(key, 'utf8');
    hashKey(bytes, 0, bytes.length);
    if (this.#endKey(key === '__proto__' || key === 'constructor' || key === 'prototype' ? key : null)) this.#duplicate(key);
  }

  /**
   * Counts the key (hashed into H1/H2 by the caller), checks the forbidden names and
   * whether the object already has it; true when it does.
   */
  #endKey(name: Forbidden | null): boolean {
    if (++this.#keys > this.#maxKeys) {
      this.#violation = { kind: 'keys', limit: this.#maxKeys };
      return false;
    }
    this.#ctorPending = false;
    if (name === '__proto__') this.#violation = { kind: 'forbidden-key', key: '__proto__' };
    else if (name === 'constructor') this.#ctorPending = true;
    else if (name === 'prototype' && this.#stack[this.#depth] === 3) this.#violation = { kind: 'forbidden-key', key: 'constructor.prototype' };
    if (this.#violation) return false;
    const h1 = H1;
    const h2 = H2;
    const d = this.#depth;
    const from = this.#objStart[d] ?? 0;
    const all1 = this.#h1;
    const all2 = this.#h2;
    const top = this.#top;
    if (top - from < SMALL_OBJECT) {
      for (let k = from; k < top; k++) if (all1[k] === h1 && all2[k] === h2) return true;
    } else {
      let index = this.#index[d];
      if (index === undefined) index = this.#index[d] = new Map();
      if (index.size === 0) for (let k = from; k < top; k++) index.set(indexKey(all1[k] as number, all2[k] as number), k);
      const ik = indexKey(h1, h2);
      const at = index.get(ik);
      if (at !== undefined) {
        if (all2[at] === h2) return true;
        // The same 52 bits, not the same 60 (1 in 2^52 per pair): check them all.
        for (let k = from; k < top; k++) if (all1[k] === h1 && all2[k] === h2) return true;
      } else index.set(ik, top);
    }
    all1[top] = h1;
    all2[top] = h2;
    this.#top = top + 1;
    return false;
  }

  #duplicate(key: string): void {
    this.#violation = { kind: 'duplicate-key', key: PLAIN_KEY.test(key) ? key : null };
  }
}

type Forbidden = '__proto__' | 'constructor' | 'prototype';

const PROTO = Buffer.from('__proto__');
const CTOR = Buffer.from('constructor');
const PROTOTYPE = Buffer.from('prototype');

function same(buf: ArrayLike<number>, from: number, word: Uint8Array): boolean {
  for (let k = 0; k < word.length; k++) if (buf[from + k] !== word[k]) return false;
  return true;
}

/** A key wholly inside `buf[from, to)` without escapes: which forbidden name it is, if any. */
function keyIn(buf: ArrayLike<number>, from: number, to: number): Forbidden | null {
  const len = to - from;
  if (len === 9) return same(buf, from, PROTO) ? '__proto__' : same(buf, from, PROTOTYPE) ? 'prototype' : null;
  if (len === 11) return same(buf, from, CTOR) ? 'constructor' : null;
  return null;
}

/** Objects with fewer keys are searched by a scan of their hashes; larger ones get an index. */
const SMALL_OBJECT = 16;
/**
 * Seeds, random per process, so keys whose hashes collide are hard to prepare in advance. Equal keys
 * always hash alike, so a collision can never let a duplicate through; at worst it refuses the
 * sender's own body. Two 30-bit hashes, both nonlinear in the bytes (a linear one such as
 * Java's base-31 string hash collides for "Aa" and "BB" whatever the seed): two different keys
 * of one object are taken for one with a chance of about 1 in 2^60 per pair.
 */
const SEED1 = (Math.random() * 0x3fffffff) | 0;
const SEED2 = (Math.random() * 0x3fffffff) | 0;
/** The last key's hashes (module-level: returning a pair would allocate). */
let H1 = 0;
let H2 = 0;

const FNV_PRIME = 0x01000193;
const MIX_PRIME = 0x5bd1e995;
/** Raw key bytes kept for the checks that need them (forbidden names, unescaping, naming a duplicate). */
const MAX_KEY_CAPTURE = 256;

/**
 * Hashes the unescaped UTF-8 bytes of a key into H1 and H2: FNV-1a and a multiply-xorshift
 * hash, each seeded and finished by a murmur3 mix, 30 bits each (small integers, no
 * allocation). The same steps as #collect, which hashes a key that arrives in pieces.
 */
function hashKey(buf: ArrayLike<number>, from: number, to: number): void {
  let a = SEED1;
  let b = SEED2;
  for (let k = from; k < to; k++) {
    const c = buf[k] as number;
    a = Math.imul(a ^ c, FNV_PRIME);
    b = Math.imul(b ^ c, MIX_PRIME);
    b ^= b >>> 15;
  }
  finishHash(a, b, to - from);
}

function finishHash(a: number, b: number, length: number): void {
  a ^= length;
  a ^= a >>> 13;
  a = Math.imul(a, 0x85ebca6b);
  a ^= a >>> 16;
  b = Math.imul(b ^ (b >>> 13), 0xc2b2ae35);
  b ^= b >>> 16;
  H1 = a & 0x3fffffff;
  H2 = b & 0x3fffffff;
}

/** 52 bits of a key's two hashes, exact in a double: the large-object index's key (not craftable through one hash alone). */
function indexKey(h1: number, h2: number): number {
  return h1 * 0x400000 + (h2 >>> 8);
}
