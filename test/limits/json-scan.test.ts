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
];

describe('streaming JSON scanner', () => {
  it.each(CASES)('%s', (text, want) => {
    for (const size of [1, 2, 3, 7, 1 << 20]) expect(scan(text, size), `chunks of ${size}`).toEqual(want);
  });
});
