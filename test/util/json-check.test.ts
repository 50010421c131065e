import { describe, expect, it } from 'vitest';
import { findDuplicateKey, findJsonProblem, jsonPointer } from '../../src/util/json-check.ts';

const VALID = [
  '{}',
  '[]',
  '"x"',
  '-0.5e+10',
  ' \t\r\n{ "a" : [ 1 , 2.5 , -3E2 , true , false , null , { } , [ ] ] } \n',
  '{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}', // the same name in other objects is no duplicate
  '{"s":"{,\\"}[]:","t":"\\\\","u":"\\\\\\"","\\\\":1,"\\"":2}', // quotes, backslashes, structure inside strings
  '{"k":"\\u00e9\\ud83d\\ude00\\/\\b\\f\\n\\r\\t","\\u00e9":1,"é":[]}'.replace('"é":[]', '"e":[]'),
  '{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11}', // past the small-object array
  '{"\u2028":"\ud800"}', // raw U+2028 and a lone surrogate: JSON.parse accepts both
];

const DUPLICATES: [text: string, key: string, pointer: string][] = [
  ['{"a":1,"a":2}', 'a', '/a'],
  ['{"a":1,"b":{"c":1,"c":2}}', 'c', '/b/c'],
  ['{"list":[{"x":1},{"y":1,"y":2}]}', 'y', '/list/1/y'],
  ['{"kind":1,"\\u006bind":2}', 'kind', '/kind'], // the same key once decoded, as the YAML parser sees it
  ['{"a/b~":{"q":1,"q":2}}', 'q', '/a~1b~0/q'],
  ['{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"a":11}', 'a', '/a'], // found in the Set too
  ['{"s":"\\"a\\":1,","s":2}', 's', '/s'], // a quoted "a": inside a string is no key
  ['{"t":"\\\\","t":1}', 't', '/t'], // a string ending in an escaped backslash ends there
];

describe('findDuplicateKey and findJsonProblem', () => {
  it('find nothing in valid JSON without duplicate keys', () => {
    for (const text of VALID) {
      expect(() => JSON.parse(text), text).not.toThrow();
      expect(findDuplicateKey(text), text).toBeNull();
      expect(findJsonProblem(text), text).toBeNull();
    }
  });

  it('both name the duplicate key at its second occurrence, with its pointer', () => {
    for (const [text, key, pointer] of DUPLICATES) {
      const fast = findDuplicateKey(text);
      expect(fast, text).toMatchObject({ kind: 'duplicate-key', pointer, message: expect.stringContaining(JSON.stringify(key)) });
      expect(fast!.offset, text).toBe(text.lastIndexOf(`"${key === 'kind' ? '\\u006bind' : key}"`));
      expect(findJsonProblem(text), text).toEqual(fast);
    }
  });
});

describe('findJsonProblem', () => {
  it('says where a syntax error is and what it is', () => {
    const cases: [text: string, offset: number, pointer: string, message: RegExp][] = [
      ['{"a": tru}', 6, '/a', /value expected, found 't'/],
      ['{"a":1,}', 7, '/a', /member name in double quotes expected, found '}'/],
      ['{"a":1 "b":2}', 7, '/a', /',' or '}' expected/],
      ['{"a":[1,2 3]}', 10, '/a/1', /',' or ']' expected/],
      ['{"a" 1}', 5, '/a', /':' expected after member name "a"/],
      ['{"a":"x\u0001"}', 7, '/a', /U\+0001 in a string: control characters must be escaped/],
      ['{"a":"\\q"}', 6, '/a', /bad escape \\q/],
      ['{"a":"\\u12G4"}', 6, '/a', /four hex digits/],
      ['{"a":01}', 6, '/a', /',' or '}' expected/],
      ['{"a":1.}', 7, '/a', /digit expected after the decimal point/],
      ['{"a":-}', 6, '/a', /digit expected in a number/],
      ['{"a":1e}', 7, '/a', /digit expected in the exponent/],
      ['{"a":"x', 5, '/a', /string not terminated/],
      ['{"a":', 5, '/a', /value expected, found the end of the text/],
      ['{"a":1}}', 7, '', /'}' after the end of the JSON value/],
      ["{'a':1}", 1, '', /member name in double quotes expected, found '''/],
      ['', 0, '', /value expected, found the end of the text/],
    ];
    for (const [text, offset, pointer, message] of cases) {
      expect(() => JSON.parse(text), text).toThrow(SyntaxError);
      const p = findJsonProblem(text);
      expect(p, text).toMatchObject({ kind: 'syntax', offset, pointer });
      expect(p!.message, text).toMatch(message);
    }
  });

  it('accepts exactly what JSON.parse accepts (mutations of a valid document)', () => {
    // A deterministic PRNG, so that a failure can be reproduced.
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const base = JSON.stringify({ a: [1, -2.5e-3, true, false, null, { b: 'x\ny"z\\', c: [] }], 'd/e': {}, f: '\u00e9\u2028' }, null, 1);
    const alphabet = '{}[]",:\\ \n\t0123456789-+.eEtrufalsn\u0001\u00e9u';
    for (let k = 0; k < 5000; k++) {
      const chars = [...base];
      const edits = 1 + rand(3);
      for (let e = 0; e < edits; e++) {
        const at = rand(chars.length + 1);
        const op = rand(3);
        const c = alphabet[rand(alphabet.length)]!;
        if (op === 0) chars.splice(at, 1);
        else if (op === 1) chars.splice(at, 0, c);
        else chars.splice(at, 1, c);
      }
      const text = chars.join('');
      let parsed = true;
      try {
        JSON.parse(text);
      } catch {
        parsed = false;
      }
      const p = findJsonProblem(text);
      const syntaxOk = p === null || p.kind === 'duplicate-key';
      expect(syntaxOk, text).toBe(parsed);
      if (parsed) expect(findDuplicateKey(text), text).toEqual(p);
    }
  });

  it('does not recurse: deep nesting is no stack overflow', () => {
    const deep = '['.repeat(200_000) + ']'.repeat(200_000);
    expect(findJsonProblem(deep)).toBeNull();
    expect(findDuplicateKey(deep)).toBeNull();
  });
});

describe('jsonPointer', () => {
  it('escapes ~ and / (RFC 6901)', () => {
    expect(jsonPointer(['a/b', 'c~d', 0])).toBe('/a~1b/c~0d/0');
    expect(jsonPointer([])).toBe('');
  });
});
