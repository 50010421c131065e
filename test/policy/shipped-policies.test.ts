/**
 * Every policy the repository ships (the demo's, deploy/ examples, benchmark
 * policies, ConfigMaps holding one, full examples in the README and docs)
 * passes `palisade policy check`. They are found by walking the checkout, so a
 * new one is covered without touching this test; test/ is left out (its
 * fixtures include policies that must fail).
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { demoPolicyText } from '../../src/demo/policy-file.ts';
import { createLogger } from '../../src/log/logger.ts';
import { loadPolicyFile } from '../../src/policy/load.ts';
import { createServices } from '../../src/sidecar/compose.ts';

const root = resolve(import.meta.dirname, '..', '..');
const MAIN = join(root, 'src', 'cli', 'main.ts');
const dir = mkdtempSync(join(tmpdir(), 'palisade-shipped-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const isPolicy = (v: unknown): boolean => v !== null && typeof v === 'object' && (v as Record<string, unknown>)['apiVersion'] === 'palisade.dev/v1' && (v as Record<string, unknown>)['kind'] === 'Policy';

interface Found {
  /** Where it is, for the failure message. */
  readonly where: string;
  /** A file `policy check` can read: the file itself, or a copy of an embedded policy beside it (relative paths in it resolve the same). */
  readonly file: string;
}

let copies = 0;
/** Writes an embedded policy to a file in `near`, so relative paths in it resolve as they would in place. */
function embedded(where: string, text: string, near: string, out: Found[], cleanup: string[]): void {
  const file = join(near, `.shipped-policy-${process.pid}-${copies++}.yaml`);
  writeFileSync(file, text);
  out.push({ where, file });
  cleanup.push(file);
}

function shippedPolicies(): { found: Found[]; cleanup: string[] } {
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' })
    .split('\n')
    .filter((f) => f && !f.startsWith('test/') && /\.(ya?ml|json|md)$/.test(f));
  const found: Found[] = [];
  const cleanup: string[] = [];
  for (const f of files) {
    const abs = join(root, f);
    const text = readFileSync(abs, 'utf8');
    if (!text.includes('palisade.dev/v1')) continue;
    const folder = resolve(abs, '..');
    if (f.endsWith('.md')) {
      // Full examples only: a fenced YAML block that is a whole policy document.
      const blocks = text.matchAll(/^```ya?ml\n([\s\S]*?)^```/gm);
      let i = 0;
      for (const b of blocks) {
        i++;
        const body = b[1] as string;
        if (!/^kind: Policy$/m.test(body) || !/^apiVersion: palisade\.dev\/v1$/m.test(body)) continue;
        embedded(`${f} (yaml block ${i})`, body, dir, found, cleanup);
      }
      continue;
    }
    if (f.endsWith('.json')) {
      if (isPolicy(JSON.parse(text))) found.push({ where: f, file: abs });
      continue;
    }
    const docs = parseAllDocuments(text);
    const list = Array.isArray(docs) ? docs : [docs];
    list.forEach((d, i) => {
      const v: unknown = d.toJS();
      if (isPolicy(v) && list.length === 1) found.push({ where: f, file: abs });
      else if (isPolicy(v)) {
        embedded(`${f} (document ${i + 1})`, d.toString(), folder, found, cleanup);
      } else if (v !== null && typeof v === 'object' && (v as Record<string, unknown>)['kind'] === 'ConfigMap') {
        // A policy shipped inside a ConfigMap (what the sidecar mounts).
        for (const [key, value] of Object.entries(((v as Record<string, unknown>)['data'] ?? {}) as Record<string, unknown>)) {
          if (typeof value !== 'string' || !value.includes('palisade.dev/v1')) continue;
          const inner = parseAllDocuments(value);
          if (Array.isArray(inner) && inner.length === 1 && isPolicy((inner[0] as { toJS(): unknown }).toJS())) {
            embedded(`${f} (ConfigMap data ${key})`, value, folder, found, cleanup);
          }
        }
      }
    });
  }
  return { found, cleanup };
}

describe('every policy shipped in the repository passes policy check', () => {
  const { found, cleanup } = shippedPolicies();
  afterAll(() => {
    for (const f of cleanup) rmSync(f, { force: true });
  });

  it('finds the demo, the deploy example and the README example', () => {
    const where = found.map((f) => f.where);
    expect(where).toContain('src/demo/policy.yaml');
    expect(where).toContain('deploy/k8s/example/policy/policy.yaml');
    expect(where.some((w) => w.startsWith('README.md (yaml block'))).toBe(true);
  });

  it.each(found.map((f) => [f.where, f.file] as const))('%s', async (_where, file) => {
    const p = await loadPolicyFile(file, createServices(createLogger({ level: 'silent' })));
    expect(p.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('`palisade policy check src/demo/policy.yaml` exits 0 (the command the README gives)', async () => {
    const r = await promisify(execFile)(process.execPath, [MAIN, 'policy', 'check', join(root, 'src', 'demo', 'policy.yaml')]);
    expect(r.stdout).toMatch(/^ok .*policy "orders-api"/);
  });

  it('the demo runs the shipped policy with its own identity provider filled in', async () => {
    const file = join(dir, 'demo-policy.yaml');
    writeFileSync(file, demoPolicyText({ issuer: 'http://127.0.0.1:40001/realms/demo', jwksUri: 'http://127.0.0.1:40001/.well-known/jwks.json' }));
    const p = await loadPolicyFile(file, createServices(createLogger({ level: 'silent' })));
    expect(p.document.spec.authentication.jwt.issuers).toMatchObject([{ issuer: 'http://127.0.0.1:40001/realms/demo', jwksUri: 'http://127.0.0.1:40001/.well-known/jwks.json', audiences: ['orders-api'] }]);
    // The comments that explain the demo stay in the copy it runs.
    expect(readFileSync(file, 'utf8')).toContain('# The demo\'s policy');
  });
});
