/**
 * Checks JSON text for what JSON.parse does not report, or reports without a
 * place: a duplicate key (JSON.parse silently keeps the last one, so a file
 * could say two things and be read as the second), and where a syntax error
 * is (V8's "Unexpected token" messages give no position). The caller builds
 * the value with JSON.parse, which no JS scanner can match for speed; these
 * passes build nothing but each object's key set, and keep an explicit stack
 * rather than recursing, so deep nesting cannot overflow the call stack.
 *
 * Two scanners, because the common case must be cheap: findDuplicateKey, for
 * text JSON.parse has accepted, only follows the structure and jumps over
 * strings with indexOf (about as fast as JSON.parse itself on the 4 MB
 * benchmark policy); findJsonProblem checks the whole RFC 8259 grammar (the
 * one JSON.parse accepts) and is about three times slower, so it runs only
 * when JSON.parse has refused the text, to say where.
 */

export interface JsonProblem {
  readonly kind: 'syntax' | 'duplicate-key';
  /** Index (UTF-16 code units) in the text: the duplicate key's opening quote, or the first offending character. */
  readonly offset: number;
  /** RFC 6901 pointer to the member or element being read ('' at the top level). */
  readonly pointer: string;
  readonly message: string;
}

interface Frame {
  /**
   * The object's keys so far, null in an array. Most objects have a handful
   * of keys (the benchmark policy has 100,000 two-key objects): an array
   * searched in place is cheaper to make and to search than a Set until it
   * grows past SMALL keys.
   */
  keys: string[] | Set<string> | null;
  /** Current member name (null before the first) or element index: the pointer, if a problem is found. */
  at: string | number | null;
}

const SMALL = 8;

const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const QUOTE = 0x22;
const COMMA = 0x2c;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const SLASH = 0x2f;
const ZERO = 0x30;
const NINE = 0x39;
const COLON = 0x3a;
const LBRACKET = 0x5b;
const BACKSLASH = 0x5c;
const RBRACKET = 0x5d;
const LBRACE = 0x7b;
const RBRACE = 0x7d;

/** Thrown inside the scan only; turned into a JsonProblem with the pointer at that point. */
class Found {
  readonly kind: JsonProblem['kind'];
  readonly offset: number;
  readonly message: string;
  constructor(kind: JsonProblem['kind'], offset: number, message: string) {
    this.kind = kind;
    this.offset = offset;
    this.message = message;
  }
}

const isDigit = (c: number) => c >= ZERO && c <= NINE;
const isHex = (c: number) => (c >= ZERO && c <= NINE) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
/** The escapes JSON allows after a backslash besides \u: " \ / b f n r t. */
const isSimpleEscape = (c: number) => c === QUOTE || c === BACKSLASH || c === SLASH || c === 0x62 || c === 0x66 || c === 0x6e || c === 0x72 || c === 0x74;

function describeChar(text: string, i: number): string {
  if (i >= text.length) return 'the end of the text';
  const c = text.codePointAt(i)!;
  return c < SPACE || c === 0x7f ? `character U+${c.toString(16).toUpperCase().padStart(4, '0')}` : `'${String.fromCodePoint(c)}'`;
}

function pointerOf(frames: readonly Frame[]): string {
  return jsonPointer(frames.flatMap((f) => (f.at === null ? [] : [f.at])));
}

export function jsonPointer(path: readonly (string | number)[]): string {
  return path.map((p) => '/' + String(p).replaceAll('~', '~0').replaceAll('/', '~1')).join('');
}

/**
 * The first duplicate key in text that JSON.parse accepted, or null. On other
 * text the answer means nothing (but the scan still ends).
 */
export function findDuplicateKey(text: string): JsonProblem | null {
  const n = text.length;
  const frames: Frame[] = [];
  let top: Frame | undefined;
  // The next string is a member name: after '{' and after ',' in an object.
  let nameNext = false;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c <= SPACE) continue; // blanks: most characters of an indented file
    if (c === QUOTE) {
      // The closing quote is the next one not escaped, i.e. not preceded by an odd run of backslashes.
      let j = text.indexOf('"', i + 1);
      while (j > 0 && text.charCodeAt(j - 1) === BACKSLASH) {
        let k = j - 1;
        while (text.charCodeAt(k - 1) === BACKSLASH) k--;
        if ((j - k) % 2 === 0) break;
        j = text.indexOf('"', j + 1);
      }
      if (j < 0) return null; // not JSON: no more names
      if (nameNext && top !== undefined && top.keys !== null) {
        nameNext = false;
        const raw = text.slice(i + 1, j);
        const key = raw.includes('\\') ? (JSON.parse(text.slice(i, j + 1)) as string) : raw;
        top.at = key;
        const keys = top.keys;
        if (Array.isArray(keys)) {
          if (keys.includes(key)) return duplicate(key, i, frames);
          keys.push(key);
          if (keys.length > SMALL) top.keys = new Set(keys);
        } else {
          if (keys.has(key)) return duplicate(key, i, frames);
          keys.add(key);
        }
      }
      i = j;
    } else if (c === LBRACE) {
      top = { keys: [], at: null };
      frames.push(top);
      nameNext = true;
    } else if (c === LBRACKET) {
      top = { keys: null, at: 0 };
      frames.push(top);
    } else if (c === RBRACE || c === RBRACKET) {
      frames.pop();
      top = frames[frames.length - 1];
    } else if (c === COMMA && top !== undefined) {
      if (top.keys !== null) nameNext = true;
      else (top.at as number)++;
    }
  }
  return null;
}

function duplicate(key: string, offset: number, frames: readonly Frame[]): JsonProblem {
  return { kind: 'duplicate-key', offset, pointer: pointerOf(frames), message: duplicateMessage(key) };
}

const duplicateMessage = (key: string) => `duplicate key ${JSON.stringify(key)}: a key may appear only once in an object`;

/** The first syntax error or duplicate key in the text, or null if it is valid JSON without duplicate keys. */
export function findJsonProblem(text: string): JsonProblem | null {
  const n = text.length;
  const frames: Frame[] = [];
  // Set by readString: whether the string just read had an escape (a key
  // with one must be decoded before it is compared: "\u0061" is "a").
  let escaped = false;

  const ws = (i: number): number => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c !== SPACE && c !== LF && c !== CR && c !== TAB) return i;
      i++;
    }
  };

  /** i is at the opening quote; returns the index after the closing one. */
  const readString = (i: number): number => {
    escaped = false;
    let j = i + 1;
    for (;;) {
      if (j >= n) throw new Found('syntax', i, 'string not terminated');
      const c = text.charCodeAt(j);
      if (c === QUOTE) return j + 1;
      if (c === BACKSLASH) {
        escaped = true;
        const e = text.charCodeAt(j + 1);
        if (e === 0x75) {
          // \u and four hex digits (charCodeAt past the end is NaN: not hex)
          if (!(isHex(text.charCodeAt(j + 2)) && isHex(text.charCodeAt(j + 3)) && isHex(text.charCodeAt(j + 4)) && isHex(text.charCodeAt(j + 5)))) {
            throw new Found('syntax', j, 'bad \\u escape in a string: four hex digits expected');
          }
          j += 6;
        } else if (isSimpleEscape(e)) {
          j += 2;
        } else {
          throw new Found('syntax', j, `bad escape \\${j + 1 < n ? text[j + 1] : ''} in a string: JSON allows \\" \\\\ \\/ \\b \\f \\n \\r \\t and \\u with four hex digits`);
        }
        continue;
      }
      if (c < SPACE) throw new Found('syntax', j, `${describeChar(text, j)} in a string: control characters must be escaped (\\n, \\t, \\u00XX)`);
      j++;
    }
  };

  const readDigits = (j: number, what: string): number => {
    if (!isDigit(text.charCodeAt(j))) throw new Found('syntax', j, `digit expected ${what}, found ${describeChar(text, j)}`);
    do j++;
    while (isDigit(text.charCodeAt(j)));
    return j;
  };

  const readNumber = (i: number): number => {
    let j = i;
    if (text.charCodeAt(j) === MINUS) j++;
    // No leading zeros: "01" ends the number after "0", and the "1" is then unexpected.
    if (text.charCodeAt(j) === ZERO) j++;
    else j = readDigits(j, 'in a number');
    if (text.charCodeAt(j) === DOT) j = readDigits(j + 1, 'after the decimal point');
    const e = text.charCodeAt(j);
    if (e === 0x65 || e === 0x45) {
      j++;
      const s = text.charCodeAt(j);
      if (s === PLUS || s === MINUS) j++;
      j = readDigits(j, 'in the exponent');
    }
    return j;
  };

  /** i is at a member name (after a '{' or a ','); returns the index after its ':'. */
  const readMember = (f: Frame, i: number): number => {
    if (text.charCodeAt(i) !== QUOTE) throw new Found('syntax', i, `member name in double quotes expected, found ${describeChar(text, i)}`);
    const end = readString(i);
    const key = escaped ? (JSON.parse(text.slice(i, end)) as string) : text.slice(i + 1, end - 1);
    const keys = f.keys!;
    const seen = Array.isArray(keys) ? keys.includes(key) : keys.has(key);
    f.at = key;
    if (seen) throw new Found('duplicate-key', i, duplicateMessage(key));
    if (Array.isArray(keys)) {
      keys.push(key);
      if (keys.length > SMALL) f.keys = new Set(keys);
    } else {
      keys.add(key);
    }
    const colon = ws(end);
    if (text.charCodeAt(colon) !== COLON) throw new Found('syntax', colon, `':' expected after member name ${JSON.stringify(key)}, found ${describeChar(text, colon)}`);
    return colon + 1;
  };

  let i = 0;
  try {
    value: for (;;) {
      // A value starts at i, after blanks.
      i = ws(i);
      const c = text.charCodeAt(i);
      if (c === LBRACE) {
        i = ws(i + 1);
        if (text.charCodeAt(i) === RBRACE) {
          i++;
        } else {
          const f: Frame = { keys: [], at: null };
          frames.push(f);
          i = readMember(f, i);
          continue value;
        }
      } else if (c === LBRACKET) {
        i = ws(i + 1);
        if (text.charCodeAt(i) === RBRACKET) {
          i++;
        } else {
          frames.push({ keys: null, at: 0 });
          continue value;
        }
      } else if (c === QUOTE) {
        i = readString(i);
      } else if (c === MINUS || isDigit(c)) {
        i = readNumber(i);
      } else if (text.startsWith('true', i) || text.startsWith('null', i)) {
        i += 4;
      } else if (text.startsWith('false', i)) {
        i += 5;
      } else {
        throw new Found('syntax', i, `value expected, found ${describeChar(text, i)}`);
      }
      // A value ended at i: what may follow depends on the enclosing container.
      for (;;) {
        i = ws(i);
        const top = frames[frames.length - 1];
        if (top === undefined) {
          if (i < n) throw new Found('syntax', i, `${describeChar(text, i)} after the end of the JSON value`);
          return null;
        }
        const d = text.charCodeAt(i);
        if (top.keys !== null) {
          if (d === COMMA) {
            i = readMember(top, ws(i + 1));
            continue value;
          }
          if (d !== RBRACE) throw new Found('syntax', i, `',' or '}' expected after a member's value, found ${describeChar(text, i)}`);
        } else {
          if (d === COMMA) {
            (top.at as number)++;
            i++;
            continue value;
          }
          if (d !== RBRACKET) throw new Found('syntax', i, `',' or ']' expected after an array element, found ${describeChar(text, i)}`);
        }
        frames.pop();
        i++;
      }
    }
  } catch (err) {
    if (!(err instanceof Found)) throw err;
    return { kind: err.kind, offset: err.offset, pointer: pointerOf(frames), message: err.message };
  }
}
