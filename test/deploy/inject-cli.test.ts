/**
 * The `palisade inject` command as a user runs it: a real process, stdin and
 * files in, stdout or files out, exit codes, and nothing written on error.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'palisade.js');
const FIXTURES = join(import.meta.dirname, 'fixtures', 'inject');
const GOLDEN = join(import.meta.dirname, 'golden', 'inject');
const dir = mkdtempSync(join(tmpdir(), 'palisade-inject-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function palisade(args: string[], stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

describe('palisade inject (command)', () => {
  it('reads stdin and writes the injected YAML to stdout', async () => {
    const r = await palisade(['inject'], readFileSync(join(FIXTURES, 'deployment.yaml'), 'utf8'));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(join(GOLDEN, 'deployment.yaml'), 'utf8'));
    expect(r.stderr).toContain('Deployment shop/orders injected');
    expect(r.stderr).toContain('Service shop/orders service-rewired');
  });

  it('"-" is stdin too, and --quiet silences the summary', async () => {
    const r = await palisade(['inject', '-q', '-'], readFileSync(join(FIXTURES, 'pod.yaml'), 'utf8'));
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(join(GOLDEN, 'pod.yaml'), 'utf8'));
    expect(r.stderr).toBe('');
  });

  it('--fallback renders the plain-container sidecar', async () => {
    const r = await palisade(['inject', '--fallback', join(FIXTURES, 'fallback.yaml')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(join(GOLDEN, 'fallback.yaml'), 'utf8'));
  });

  it('several files become one multi-document stream', async () => {
    const r = await palisade(['inject', join(FIXTURES, 'pod.yaml'), join(FIXTURES, 'spiffe.yaml')]);
    expect(r.code).toBe(0);
    const kinds = parseAllDocuments(r.stdout).map((d) => (d.toJS() as { kind: string }).kind);
    expect(kinds).toEqual(['Pod', 'Deployment']);
  });

  it('joins files into a valid stream even when one lacks its final newline', async () => {
    const bare = join(dir, 'bare.yaml');
    writeFileSync(bare, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c');
    const r = await palisade(['inject', bare, join(FIXTURES, 'pod.yaml')]);
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith('apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n---\napiVersion: v1\nkind: Pod\n')).toBe(true);
  });

  it('--in-place rewrites the file; a second run leaves it byte-identical', async () => {
    const file = join(dir, 'app.yaml');
    writeFileSync(file, readFileSync(join(FIXTURES, 'statefulset.yaml')));
    expect((await palisade(['inject', '-i', file])).code).toBe(0);
    const once = readFileSync(file, 'utf8');
    expect(once).toBe(readFileSync(join(GOLDEN, 'statefulset.yaml'), 'utf8'));
    expect((await palisade(['inject', '--in-place', file])).code).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe(once);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('-o writes the output file', async () => {
    const out = join(dir, 'out.yaml');
    const r = await palisade(['inject', join(FIXTURES, 'daemonset.yaml'), '-o', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(join(GOLDEN, 'daemonset.yaml'), 'utf8'));
  });

  it('on hostile input: exit 1, a clear message, no output, no file touched', async () => {
    const good = join(dir, 'good.yaml');
    const bad = join(dir, 'bad.yaml');
    const goodText = readFileSync(join(FIXTURES, 'pod.yaml'), 'utf8');
    writeFileSync(good, goodText);
    writeFileSync(bad, 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n    - name: palisade\n      image: x\n');

    const toStdout = await palisade(['inject', good, bad]);
    expect(toStdout.code).toBe(1);
    expect(toStdout.stdout).toBe('');
    expect(toStdout.stderr).toMatch(/^palisade inject: INJECT_NAME_CONFLICT: .*bad\.yaml: document 1 \(Pod x\): spec.containers already has a container named "palisade"/);

    const inPlace = await palisade(['inject', '-i', good, bad]);
    expect(inPlace.code).toBe(1);
    expect(readFileSync(good, 'utf8')).toBe(goodText);

    const out = join(dir, 'never.yaml');
    const toFile = await palisade(['inject', good, bad, '-o', out]);
    expect(toFile.code).toBe(1);
    expect(existsSync(out)).toBe(false);

    const yaml = await palisade(['inject'], 'kind: [\n');
    expect(yaml.code).toBe(1);
    expect(yaml.stdout).toBe('');
    expect(yaml.stderr).toContain('INJECT_YAML_INVALID: stdin: document 1: invalid YAML');
  });

  it('usage errors exit 2; a bad option value exits 1 naming the flag', async () => {
    const unknown = await palisade(['inject', '--no-such-flag']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toBe('palisade inject: unknown flag --no-such-flag\nRun "palisade inject --help" for usage.\n');
    const bad = await palisade(['inject', '--mode', 'sideways', join(FIXTURES, 'pod.yaml')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('--mode: must be one of "native", "container"');
    expect(bad.stdout).toBe('');
  });

  it('--help lists every option', async () => {
    const r = await palisade(['inject', '--help']);
    expect(r.code).toBe(0);
    for (const flag of ['--image', '--mode', '--cert-source', '--policy-configmap', '--listen-port', '--cpu-limit', '--fallback', '--in-place']) expect(r.stdout).toContain(flag);
  });
});
