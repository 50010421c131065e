// `palisade demo` for a user: a port in use is one line naming it and its flag; an edited
// policy copy is not overwritten without saying so; policy edits while it runs are readable lines.
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { prepareDemoPolicy } from '../../src/demo/policy-file.ts';
import { runDemo } from '../../src/demo/run.ts';
import { palisade } from '../cli/support/run.ts';

const dirs: string[] = [];
const tmp = (tag: string) => {
  const d = mkdtempSync(join(tmpdir(), `palisade-demo-${tag}-`));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function occupy(): Promise<{ server: Server; port: number }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

async function waitFor(lines: string[], re: RegExp, timeoutMs = 20_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const hit = lines.find((l) => re.test(l));
    if (hit) return hit;
    if (Date.now() > end) throw new Error(`no line matching ${re} in:\n${lines.join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('palisade demo: ports in use', () => {
  it.each([
    ['--port', 'the sidecar'],
    ['--admin-port', "the sidecar's admin listener"],
    ['--service-port', 'the orders service'],
  ])('%s taken: one line naming the port and the flag, exit 1, nothing started', async (flag, what) => {
    const { server, port } = await occupy();
    try {
      const dir = tmp('port');
      const others = ['--port', '0', '--admin-port', '0', '--service-port', '0'].map((a, i, all) => (all[i - 1] === flag ? String(port) : a));
      const r = await palisade(['demo', '--once', '--dir', dir, ...others]);
      expect(r.stderr).toBe(`palisade demo: port ${port} (${what}) is already in use on 127.0.0.1; stop what uses it (another palisade demo?) or choose another port with ${flag} N\n`);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      // Checked before anything was generated.
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      server.close();
    }
  });
});

describe('palisade demo: the policy copy', () => {
  const idp = { issuer: 'http://127.0.0.1:1111/', jwksUri: 'http://127.0.0.1:1111/jwks' };
  const next = { issuer: 'http://127.0.0.1:2222/', jwksUri: 'http://127.0.0.1:2222/jwks' };

  it('rewrites an unedited copy silently; keeps an edited one aside and says where', () => {
    const dir = tmp('policy');
    const file = join(dir, 'policy.yaml');
    expect(prepareDemoPolicy(file, idp, false)).toBeNull();
    expect(readFileSync(file, 'utf8')).toContain('jwksUri: http://127.0.0.1:1111/jwks');
    // A second run over its own copy: nothing to say.
    expect(prepareDemoPolicy(file, next, false)).toBeNull();
    expect(readFileSync(file, 'utf8')).toContain('jwksUri: http://127.0.0.1:2222/jwks');

    const edited = readFileSync(file, 'utf8').replace(/version: "[^"]*"/, 'version: "my-edit"');
    writeFileSync(file, edited);
    const note = prepareDemoPolicy(file, idp, false, new Date('2026-12-06T21:00:00.000Z'));
    const backup = `${file}.edited-2026-12-06T21-00-00-000Z`;
    expect(note).toBe(`${file} had been edited: your version is kept as ${backup}; this run starts from the shipped policy (palisade demo --keep-policy runs yours)`);
    expect(readFileSync(backup, 'utf8')).toBe(edited);
    expect(readFileSync(file, 'utf8')).not.toContain('my-edit');
  });

  it('--keep-policy runs the edited copy, pointed at this run\'s identity provider', () => {
    const dir = tmp('keep');
    const file = join(dir, 'policy.yaml');
    prepareDemoPolicy(file, idp, false);
    writeFileSync(file, readFileSync(file, 'utf8').replace(/version: "[^"]*"/, 'version: "my-edit"'));
    const note = prepareDemoPolicy(file, next, true);
    expect(note).toBe(`running your edited ${file} (--keep-policy), its JWT issuer pointed at this run's identity provider`);
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('version: "my-edit"');
    expect(text).toContain('jwksUri: http://127.0.0.1:2222/jwks');
    expect(readdirSync(dir).filter((f) => f.includes('.edited-'))).toEqual([]);
  });
});

describe('palisade demo: policy edits while it runs', () => {
  it('says when an edit is applied and when one is refused (the previous policy staying in force)', { timeout: 120_000 }, async () => {
    const dir = tmp('edits');
    const lines: string[] = [];
    const demo = await runDemo({ dir, port: 0, adminPort: 0, servicePort: 0, once: false, blockSeconds: 1, out: (l) => lines.push(l) });
    try {
      const file = join(dir, 'policy.yaml');
      const text = readFileSync(file, 'utf8');
      writeFileSync(file, text.replace(/version: "[^"]*"/, 'version: "edit-1"'));
      expect(await waitFor(lines, /edit applied/)).toMatch(new RegExp(`^\\[policy \\d\\d:\\d\\d:\\d\\d\\] edit applied: ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is now policy "[^"]+" version edit-1 \\(hash [0-9a-f]{12}\\)$`));
      writeFileSync(file, text.replace(/^spec:/m, 'spec:\n  bogusField: 1'));
      const refused = await waitFor(lines, /edit REFUSED/);
      expect(refused).toMatch(/^\[policy \d\d:\d\d:\d\d\] edit REFUSED, the previous policy stays in force: POLICY_INVALID: .*bogusField/s);
      // Readable lines, not log records.
      expect(lines.filter((l) => l.startsWith('{'))).toEqual([]);
    } finally {
      await demo.close();
    }
  });
});
