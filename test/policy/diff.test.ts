import { execFile } from 'node:child_process';
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNdjsonSink } from '../../src/decision/sinks/ndjson.ts';
import { send, startHarness, until, type Harness } from '../support/harness.ts';

const run = promisify(execFile);
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const WEB = 'spiffe://test.local/ns/shop/sa/web';
const BATCH = 'spiffe://test.local/ns/shop/sa/batch';

const OLD = `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: orders, version: "1" }
spec:
  authorization:
    roles:
      - name: web
        subjects: [{ spiffeId: "${WEB}" }]
    rules:
      - id: orders-read
        methods: [GET]
        paths: ["/orders/**"]
        authenticated: true
`;

const NEW = `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: orders, version: "2" }
spec:
  authorization:
    roles:
      - name: web
        subjects: [{ spiffeId: "${WEB}" }]
    rules:
      - id: no-export
        effect: deny
        paths: ["/orders/{id}/export"]
        audit: true
      - id: orders-read
        methods: [GET]
        paths: ["/orders/**"]
        roles: [web]
      - id: reports
        methods: [GET]
        paths: ["/reports"]
        roles: [web]
`;

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [MAIN, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('palisade policy diff', () => {
  let h: Harness;
  let dir: string;
  let recording: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'palisade-diff-'));
    writeFileSync(join(dir, 'old.yaml'), OLD);
    writeFileSync(join(dir, 'new.yaml'), NEW);
    // Record real traffic through a sidecar running the old policy.
    h = await startHarness(OLD);
    const web = await h.client(WEB);
    const batch = await h.client(BATCH);
    await send(web, `${h.base}/orders/1`);
    await send(batch, `${h.base}/orders/1`);
    await send(batch, `${h.base}/orders/1`);
    await send(batch, `${h.base}/orders/2`);
    await send(web, `${h.base}/orders/7/export`);
    await send(web, `${h.base}/reports`);
    await send(batch, `${h.base}/admin`);
    await until(() => h.decisions.length === 7);
    // ...and write it the way the sidecar does: its NDJSON sink (OCSF events).
    recording = join(dir, 'decisions.ndjson');
    const sink = createNdjsonSink({ target: recording });
    for (const r of h.decisions) sink.write(r);
    await sink.close();
  });
  afterAll(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists the requests whose verdict changes, with the rule on each side (exit 1)', async () => {
    const r = await cli('policy', 'diff', join(dir, 'old.yaml'), join(dir, 'new.yaml'), '--decisions', recording);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('replayed 7 recorded request(s) through authorization');
    expect(r.stdout).toContain('5 request(s) change verdict, 4 distinct:');
    expect(r.stdout).toContain(`  GET /orders/1  host=127.0.0.1:${h.sidecar.tlsPort}  identity=${BATCH}  x2\n    old: allow by rule "orders-read"\n    new: deny AUTHZ_NO_MATCHING_RULE by rule "orders-read"`);
    expect(r.stdout).toContain(`  GET /orders/7/export  host=127.0.0.1:${h.sidecar.tlsPort}  identity=${WEB}  x1\n    old: allow by rule "orders-read"\n    new: would_deny AUTHZ_DENY_RULE by rule "no-export"`);
    expect(r.stdout).toContain(`  GET /reports  host=127.0.0.1:${h.sidecar.tlsPort}  identity=${WEB}  x1\n    old: deny AUTHZ_NO_MATCHING_RULE (no rule matches)\n    new: allow by rule "reports"`);
    expect(r.stdout).not.toContain('/admin');
  });

  it('groups identical changes and writes JSON', async () => {
    const r = await cli('policy', 'diff', join(dir, 'old.yaml'), join(dir, 'new.yaml'), '--decisions', recording, '--json');
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as { replayed: number; changedRequests: number; changes: { path: string; count: number; old: unknown; new: unknown }[]; old: { version: string }; new: { version: string } };
    expect(out).toMatchObject({ replayed: 7, changedRequests: 5, old: { version: '1' }, new: { version: '2' } });
    // Most frequent first, then in recording order.
    expect(out.changes.map((c) => [c.path, c.count])).toEqual([
      ['/orders/1', 2],
      ['/orders/2', 1],
      ['/orders/7/export', 1],
      ['/reports', 1],
    ]);
    expect(out.changes.find((c) => c.path === '/orders/2')?.new).toEqual({ verdict: 'deny', code: 'AUTHZ_NO_MATCHING_RULE', rule: 'orders-read' });
  });

  it('reads plain decision records too, and says when nothing changes (exit 0)', async () => {
    const plain = join(dir, 'plain.ndjson');
    for (const rec of h.decisions) appendFileSync(plain, JSON.stringify(rec) + '\n');
    appendFileSync(plain, 'not json\n');
    const same = await cli('policy', 'diff', join(dir, 'old.yaml'), join(dir, 'old.yaml'), '--decisions', plain);
    expect(same.code).toBe(0);
    expect(same.stdout).toContain('no verdict changes');
    expect(same.stderr).toMatch(/skipped 1 unreadable line\(s\)[\s\S]*line 8:/);
    const changed = await cli('policy', 'diff', join(dir, 'old.yaml'), join(dir, 'new.yaml'), '--decisions', plain, '--json');
    expect(JSON.parse(changed.stdout)).toMatchObject({ changedRequests: 5 });
  });

  it('exits 2 with a message on trouble', async () => {
    const r = await cli('policy', 'diff', join(dir, 'old.yaml'), join(dir, 'new.yaml'), '--decisions', join(dir, 'missing.ndjson'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--decisions .*missing\.ndjson: cannot read: ENOENT/);
    expect((await cli('policy', 'diff', join(dir, 'old.yaml'))).code).toBe(2);
  });
});
