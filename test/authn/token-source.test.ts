import { describe, expect, it } from 'vitest';
import { compileTokenSource, MAX_TOKEN_LENGTH } from '../../src/authn/token-source.ts';

describe('token sources', () => {
  const bearer = compileTokenSource({ from: 'bearer' });
  const header = compileTokenSource({ from: 'header', name: 'X-Access-Token' });
  const cookie = compileTokenSource({ from: 'cookie', name: 'at' });

  it('reads Authorization: Bearer (scheme case-insensitive, extra spaces tolerated)', () => {
    expect(bearer({ authorization: 'Bearer abc.def.ghi' })).toEqual({ kind: 'token', token: 'abc.def.ghi' });
    expect(bearer({ authorization: 'bearer   abc ' })).toEqual({ kind: 'token', token: 'abc' });
    expect(bearer({})).toEqual({ kind: 'absent' });
    expect(bearer({ authorization: 'Basic dXNlcjpwYXNz' })).toEqual({ kind: 'absent' });
    expect(bearer({ authorization: 'Bearer' }).kind).toBe('malformed');
    expect(bearer({ authorization: 'Bearer a b' }).kind).toBe('malformed');
    expect(bearer({ authorization: 'Bearer a,b' }).kind).toBe('malformed');
    expect(bearer({ authorization: `Bearer ${'a'.repeat(MAX_TOKEN_LENGTH + 1)}` }).kind).toBe('malformed');
  });

  it('reads a named header, with or without the Bearer prefix; a repeated header is malformed', () => {
    expect(header({ 'x-access-token': 'tok' })).toEqual({ kind: 'token', token: 'tok' });
    expect(header({ 'x-access-token': 'Bearer tok' })).toEqual({ kind: 'token', token: 'tok' });
    expect(header({ 'x-access-token': 'tok1, tok2' }).kind).toBe('malformed');
    expect(header({ authorization: 'Bearer tok' })).toEqual({ kind: 'absent' });
  });

  it('reads a named cookie; a duplicated cookie (cookie tossing) is malformed', () => {
    expect(cookie({ cookie: 'a=1; at=tok; b=2' })).toEqual({ kind: 'token', token: 'tok' });
    expect(cookie({ cookie: 'at="tok"' })).toEqual({ kind: 'token', token: 'tok' });
    expect(cookie({ cookie: 'xat=tok' })).toEqual({ kind: 'absent' });
    expect(cookie({ cookie: 'at=one; at=two' }).kind).toBe('malformed');
    expect(cookie({ cookie: 'at=' }).kind).toBe('malformed');
  });

  it('refuses sources without a name or with a bad one', () => {
    expect(() => compileTokenSource({ from: 'cookie' })).toThrow(/needs name/);
    expect(() => compileTokenSource({ from: 'header', name: 'bad header' })).toThrow(/not a valid header name/);
    expect(() => compileTokenSource({ from: 'header', name: 'Cookie' })).toThrow(/cannot carry a token/);
    expect(() => compileTokenSource({ from: 'bearer', name: 'x' })).toThrow(/only used with/);
  });
});
