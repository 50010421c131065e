import { describe, expect, it } from 'vitest';
import { normalizePath } from '../../src/http/normalize-path.ts';

function ok(target: string, options = {}) {
  const r = normalizePath(target, options);
  if (!r.ok) throw new Error(`expected ok for ${target}: ${r.reason}`);
  return r;
}
function bad(target: string, options = {}) {
  const r = normalizePath(target, options);
  expect(r.ok, target).toBe(false);
  return r.ok ? '' : r.reason;
}

describe('normalizePath', () => {
  it('leaves a plain path and its query alone', () => {
    expect(ok('/orders/42?x=1&y=%2F')).toEqual({ ok: true, path: '/orders/42', forward: '/orders/42', query: 'x=1&y=%2F' });
  });

  it('resolves dot segments and duplicate slashes, encoded or not', () => {
    expect(ok('/public/../admin').path).toBe('/admin');
    expect(ok('/public/%2e%2e/admin').path).toBe('/admin');
    expect(ok('/public/%2E%2E/admin').path).toBe('/admin');
    expect(ok('/a/./b//c///d').path).toBe('/a/b/c/d');
    expect(ok('//admin').path).toBe('/admin');
    expect(ok('/a/b/').path).toBe('/a/b/');
  });

  it('percent-decodes for matching and forwards a canonical encoding', () => {
    const r = ok('/%61dmin/caf%C3%A9/a%20b');
    expect(r.path).toBe('/admin/café/a b');
    expect(r.forward).toBe('/admin/caf%C3%A9/a%20b');
  });

  it('rejects encoded slashes, backslashes, NUL and control bytes', () => {
    expect(bad('/admin%2Fusers')).toMatch(/slash/);
    expect(bad('/admin%2fusers')).toMatch(/slash/);
    expect(bad('/admin%5Cusers')).toMatch(/backslash/);
    expect(bad('/admin\\users')).toMatch(/backslash/);
    expect(bad('/admin%00')).toMatch(/control/);
    expect(bad('/admin%0a')).toMatch(/control/);
  });

  it('rejects double encoding, bad escapes and invalid UTF-8', () => {
    expect(bad('/%2561dmin')).toMatch(/double/);
    expect(bad('/%252e%252e/admin')).toMatch(/double/);
    expect(bad('/%zz')).toMatch(/percent/);
    expect(bad('/%C3')).toMatch(/UTF-8/);
  });

  it('rejects climbing above the root', () => {
    expect(bad('/../etc/passwd')).toMatch(/root/);
    expect(bad('/a/../../b')).toMatch(/root/);
  });

  it('rejects ";" matrix parameters unless the policy allows them', () => {
    expect(bad('/admin;jsessionid=1')).toMatch(/matrix/);
    expect(bad('/admin%3Bx')).toMatch(/matrix/);
    expect(ok('/admin;v=1', { allowMatrixParams: true }).path).toBe('/admin;v=1');
  });

  it('rejects targets that are not absolute paths', () => {
    expect(bad('http://evil/admin')).toMatch(/absolute/);
    expect(bad('*')).toMatch(/absolute/);
  });
});
