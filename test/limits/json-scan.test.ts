import { describe, expect, it } from 'vitest';
import { JsonScanner } from '../../src/limits/json-scan.ts';

/** Scans `text` split into chunks of `size` bytes; the result must not depend on where chunks split. */
function scan(text: string, size: number, depth = 8, keys = 100) {
  const s = new JsonScanner(depth, keys);
  const b = Buffer.from(text);
  for (let i = 0; i < b.length; i += size) {
    const v = s.push(b.subarray(i, i + size));
    if (v) return v;
  }
  return null;
}

const CASES: [string, unknown][] = [
  ['{"a":1,"b":[1,2,{"c":"x"}]}', null],
  ['{"__proto__":{"x":1}}', { kind: 'forbidden-key', key: '__proto__' }],
  ['{"a":{"\\u005f\\u005fproto\\u005f\\u005f":1}}', { kind: 'forbidden-key', key: '__proto__' }],
  ['{"constructor":{"prototype":{"x":1}}}', { kind: 'forbidden-key', key: 'constructor.prototype' }],
  ['{"constructor": \n {"a":1,"prototype":1}}', { kind: 'forbidden-key', key: 'constructor.prototype' }],
  ['{"constructor":"x","prototype":{}}', null],
  ['{"constructor":[{"prototype":1}]}', null],
  ['["__proto__","constructor"]', null],
  ['{"s":"a\\"__proto__\\":1","t":"\\\\","u":"{[{["}', null],
  ['{"s":"\\\\\\"","__proto__":1}', { kind: 'forbidden-key', key: '__proto__' }],
  ['[[[[[[[[1]]]]]]]]', null],
  ['[[[[[[[[[1]]]]]]]]]', { kind: 'depth', limit: 8 }],
  [JSON.stringify(Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`k${i}`, i]))), { kind: 'keys', limit: 100 }],
  // Duplicate keys: in one object only, compared after unescaping; named only when plain.
  ['{"a":1,"b":2,"a":3}', { kind: 'duplicate-key', key: 'a' }],
  ['{"role":"admin","\\u0072ole":"user"}', { kind: 'duplicate-key', key: 'role' }],
  ['{"\\u00e9":1,"é":2}', { kind: 'duplicate-key', key: null }],
  ['{"a b":1,"a b":2}', { kind: 'duplicate-key', key: null }],
  ['{"":1,"":2}', { kind: 'duplicate-key', key: null }],
  ['{"x":{"b":1,"b":2}}', { kind: 'duplicate-key', key: 'b' }],
  ['{"a":{"a":1},"b":{"a":2,"b":3}}', null],
  ['[{"a":1},{"a":2},[{"a":3}]]', null],
  ['{"a":{"b":1},"b":2}', null],
  ['{"a":{"b":{"c":1}},"c":2,"b":3}', null],
  ['{"e":1,"é":2,"\\u0065\\u0301":3}', null],
  ['{"s":"a","t":"a","u":["a","a"]}', null],
];

/** An object with keys k0..k(n-1) (values v), then `more` verbatim before its closing brace. */
const obj = (n: number, v = '1', more = '') => `{${Array.from({ length: n }, (_, i) => `"k${i}":${v}`).join(',')}${more}}`;
/** Objects past 16 keys are indexed, not scanned: the same cases at that size. */
const LARGE: [string, string, unknown][] = [
  ['40 distinct keys', obj(40), null],
  ['a repeat of the 4th of 40', obj(40, '1', ',"k3":2'), { kind: 'duplicate-key', key: 'k3' }],
  ['a repeat of the last of 40', obj(40, '1', ',"k39":2'), { kind: 'duplicate-key', key: 'k39' }],
  ['sibling objects with the same 30 keys', `[${obj(30)},${obj(30)},${obj(30)}]`, null],
  ['the parent goes on after a large child with its keys', obj(20, '1', `,"inner":${obj(30)},"z":1`), null],
  ['the parent repeats a key after a large child', obj(20, '1', `,"inner":${obj(30)},"k5":1`), { kind: 'duplicate-key', key: 'k5' }],
  ['a large child repeats a key', obj(20, '1', `,"inner":${obj(30, '1', ',"k29":0')}`), { kind: 'duplicate-key', key: 'k29' }],
];

describe('duplicate keys whichever way they arrive', () => {
  // A key read in place and its twin pieced together across chunks must hash alike.
  const long = 'x'.repeat(1000);
  it.each([
    ['long keys (past the bytes kept)', `{"${long}":1,"y":2,"${long}":3}`, { kind: 'duplicate-key', key: null }],
    ['long keys that differ in the last byte', `{"${long}a":1,"${long}b":2}`, null],
    ['keys of 64 bytes, named', `{"${'k'.repeat(64)}":1,"${'k'.repeat(64)}":2}`, { kind: 'duplicate-key', key: 'k'.repeat(64) }],
    ['keys of 65 bytes, not named', `{"${'k'.repeat(65)}":1,"${'k'.repeat(65)}":2}`, { kind: 'duplicate-key', key: null }],
  ])('%s', (_name, text, want) => {
    for (const size of [1, 3, 64, 333, 1 << 20]) expect(scan(text, size), `chunks of ${size}`).toEqual(want);
  });
});

describe('streaming JSON scanner', () => {
  it.each(CASES)('%s', (text, want) => {
    for (const size of [1, 2, 3, 7, 1 << 20]) expect(scan(text, size), `chunks of ${size}`).toEqual(want);
  });
});

describe('duplicate keys in large objects', () => {
  it.each(LARGE)('%s', (_name, text, want) => {
    for (const size of [1, 5, 1 << 20]) expect(scan(text, size, 8, 1000), `chunks of ${size}`).toEqual(want);
  });

  it('takes no two of 256 keys that collide under a linear string hash for one', () => {
    // "Aa" and "BB" have one Java hashCode, so do all 2^8 strings of eight such blocks.
    const keys = Array.from({ length: 256 }, (_, i) => Array.from({ length: 8 }, (_, bit) => ((i >> bit) & 1 ? 'Aa' : 'BB')).join(''));
    expect(new Set(keys).size).toBe(256);
    expect(scan(`{${keys.map((k) => `"${k}":0`).join(',')}}`, 1 << 20, 8, 1000)).toBeNull();
    expect(scan(`{${keys.map((k) => `"${k}":0`).join(',')},"${keys[200]}":1}`, 1 << 20, 8, 1000)).toEqual({ kind: 'duplicate-key', key: keys[200] });
  });

  it('takes no two of 200,000 distinct keys for one (no hash collision among them)', () => {
    const keys = Array.from({ length: 200_000 }, (_, i) => `"${i.toString(36)}":0`);
    expect(scan(`{${keys.join(',')}}`, 1 << 24, 8, 1_000_000)).toBeNull();
  });
});
