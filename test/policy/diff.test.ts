import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

// The lockout: every workload authenticates with mTLS; the new policy asks for a JWT everywhere.
const LOCKOUT = OLD.replace('metadata: { name: orders, version: "1" }\nspec:\n', `metadata: { name: orders, version: "lockout" }
spec:
  authentication:
    jwt:
      issuers: [{ issuer: "https://idp.example.com/", jwksUri: "https://idp.example.com/jwks", audiences: [orders] }]
    defaultRequire: jwt
`);

// Each other stage a recording can replay: the block list, validation's routes and path parameters.
const BLOCKED = OLD.replace('metadata: { name: orders, version: "1" }\nspec:\n', `metadata: { name: orders, version: "blocked" }
spec:
  blocklist:
    entries:
      - { id: batch-job, spiffeId: "${BATCH}", reason: runaway batch job }
  validation:
    unknownRoutes: deny
    routes:
      - { id: get-order, method: GET, path: "/orders/{id}", params: { type: object, properties: { id: { type: string, pattern: "^[0-9]+$" } } } }
      - { id: get-admin, method: GET, path: /admin }
`);

// Changes a recording cannot show: a new rate limit, a new body schema.
const UNREPLAYABLE = OLD.replace('metadata: { name: orders, version: "1" }\nspec:\n', `metadata: { name: orders, version: "limits" }
spec:
  rateLimits:
    rules:
      - { id: per-client, key: [identity], rate: 1, per: minute }
  limits:
    maxBodyBytes: 1024
`);

describe('palisade policy diff', () => {
  let h: Harness;
  let dir: string;
  let recording: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'palisade-diff-'));
    writeFileSync(join(dir, 'old.yaml'), OLD);
    writeFileSync(join(dir, 'new.yaml'), NEW);
    writeFileSync(join(dir, 'lockout.yaml'), LOCKOUT);
    writeFileSync(join(dir, 'blocked.yaml'), BLOCKED);
    writeFileSync(join(dir, 'unreplayable.yaml'), UNREPLAYABLE);
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

  it('lists the requests whose outcome changes, with verdict, code, stage and rule on each side (exit 3)', async () => {
    const r = await cli('policy', 'diff', join(dir, 'old.yaml'), join(dir, 'new.yaml'), '--decisions', recording);
    expect(r.code).toBe(3);
    expect(r.stdout).toContain('replayed 7 recorded request(s) through every stage: block list, authentication');
    expect(r.stdout).toContain('5 request(s) change outcome, 4 distinct:');
    expect(r.stdout).toContain(`  GET /orders/1  host=127.0.0.1:${h.sidecar.tlsPort}  identity=${BATCH}  x2\n    old: allow by rule "orders-read"\n    new: deny AUTHZ_NO_MATCHING_RULE at authz by rule "orders-read"`);
    expect(r.stdout).toContain(`  GET /orders/7/export  host=127.0.0.1:${h.sidecar.tlsPort}  identity=${WEB}  x1\n    old: allow by rule "orders-read"\n    new: would_deny AUTHZ_DENY_RULE at authz by rule "no-export"`);
    expect(r.stdout).toContain(`  GET /reports  host=127.0.0.1:${h.sidecar.tlsPort}  identity=${WEB}  x1\n    old: deny AUTHZ_NO_MATCHING_RULE at authz (no rule matches)\n    new: allow by rule "reports"`);
    expect(r.stdout).not.toContain('/admin');
    // Only authorization changed: nothing is left unreplayed.
    expect(r.stdout).not.toContain('NOT REPLAYED');
  });

  it('catches the lockout: defaultRequire mtls -> jwt denies every recorded workload at authn (exit 3)', async () => {
    const r = await cli('policy', 'diff', join(dir, 'old.yaml'), join(dir, 'lockout.yaml'), '--decisions', recording);
    expect(r.code).toBe(3);
    expect(r.stdout).not.toContain('no outcome changes');
    expect(r.stdout).toContain(`  GET /orders/1  host=127.0.0.1:${h.sidecar.tlsPort}  identity=${BATCH}  x2\n    old: allow by rule "orders-read"\n    new: deny AUTHN_REQUIRED at authn (the default requirement)\n    (the recording shows no verified token for this request (tokens are never recorded), so it is taken as absent)`);
    const json = JSON.parse((await cli('policy', 'diff', join(dir, 'old.yaml'), join(dir, 'lockout.yaml'), '--decisions', recording, '-o', 'json')).stdout) as { changedRequests: number; changes: { new: { verdict: string; code: string; stage: string } }[]; unreplayed: { stage: string; what: string }[] };
    // Every recorded request that got past the old authn is now refused there (the one denied by authz too).
    expect(json.changedRequests).toBe(7);
    expect(new Set(json.changes.map((c) => `${c.new.verdict} ${c.new.code} ${c.new.stage}`))).toEqual(new Set(['deny AUTHN_REQUIRED authn']));
    // The new issuer's token checks cannot be replayed: said so, per issuer.
    expect(json.unreplayed).toEqual([{ stage: 'authn', what: 'jwt issuer "https://idp.example.com/" added', why: expect.stringContaining('tokens are never recorded') }]);
  });

  it('replays the block list and validation routes and path parameters', async () => {
    const r = await cli('policy', 'diff', join(dir, 'old.yaml'), join(dir, 'blocked.yaml'), '--decisions', recording, '-o', 'json');
    expect(r.code).toBe(3);
    const out = JSON.parse(r.stdout) as { changes: { method: string; path: string; subject: string; count: number; old: { verdict: string }; new: { verdict: string; code: string; stage: string; rule: string | null } }[]; unreplayed: unknown[] };
    const got = out.changes.map((c) => [c.path, c.subject, c.count, c.old.verdict, `${c.new.verdict} ${c.new.code} ${c.new.stage} ${c.new.rule}`]);
    expect(got).toEqual(
      expect.arrayContaining([
        ['/orders/1', BATCH, 2, 'allow', 'deny BLOCKED blocklist batch-job'],
        ['/orders/7/export', WEB, 1, 'allow', 'deny ROUTE_UNKNOWN validation null'],
      ]),
    );
    // /orders/1 by web passes the new path-parameter check and is unchanged; the blocked /admin request stays refused.
    expect(out.changes.find((c) => c.path === '/orders/1' && c.subject === WEB)).toBeUndefined();
    expect(out.unreplayed).toEqual([]);
  });

  it('names every change it cannot replay, per rule, and exits 4 rather than "no change"', async () => {
    const r = await cli('policy', 'diff', join(dir, 'old.yaml'), join(dir, 'unreplayable.yaml'), '--decisions', recording);
    expect(r.code).toBe(4);
    expect(r.stdout).toContain('no outcome changes among the replayed requests');
    expect(r.stdout).toContain('NOT REPLAYED: 2 policy change(s) the recorded events cannot show; review them by hand:');
    expect(r.stdout).toContain('  ratelimit: rate limit "per-client" added: rate-limit bucket state');
    expect(r.stdout).toContain('  validation: limits.maxBodyBytes changed: bodies, query strings and headers are never recorded');
  });

  it('groups identical changes and writes JSON', async () => {
    const r = await cli('policy', 'diff', join(dir, 'old.yaml'), join(dir, 'new.yaml'), '--decisions', recording, '--json');
    expect(r.code).toBe(3);
    const out = JSON.parse(r.stdout) as { replayed: number; changedRequests: number; changes: { path: string; count: number; old: unknown; new: unknown }[]; old: { version: string }; new: { version: string } };
    expect(out).toMatchObject({ replayed: 7, changedRequests: 5, old: { version: '1' }, new: { version: '2' } });
    // Most frequent first, then in recording order.
    expect(out.changes.map((c) => [c.path, c.count])).toEqual([
      ['/orders/1', 2],
      ['/orders/2', 1],
      ['/orders/7/export', 1],
      ['/reports', 1],
    ]);
    expect(out.changes.find((c) => c.path === '/orders/2')?.new).toEqual({ verdict: 'deny', code: 'AUTHZ_NO_MATCHING_RULE', rule: 'orders-read', stage: 'authz', notes: [] });
  });

  it('reads plain decision records too, and says when nothing changes (exit 0)', async () => {
    const plain = join(dir, 'plain.ndjson');
    for (const rec of h.decisions) appendFileSync(plain, JSON.stringify(rec) + '\n');
    appendFileSync(plain, 'not json\n');
    const same = await cli('policy', 'diff', join(dir, 'old.yaml'), join(dir, 'old.yaml'), '--decisions', plain);
    expect(same.code).toBe(0);
    expect(same.stdout).toContain('no outcome changes among the replayed requests');
    expect(same.stderr).toMatch(/skipped 1 unreadable line\(s\)[\s\S]*line 8:/);
    const changed = await cli('policy', 'diff', join(dir, 'old.yaml'), join(dir, 'new.yaml'), '--decisions', plain, '--json');
    expect(JSON.parse(changed.stdout)).toMatchObject({ changedRequests: 5 });
    // A recording piped in (kcat ... | palisade policy diff ... --decisions -).
    const piped = spawnSync(process.execPath, [MAIN, 'policy', 'diff', join(dir, 'old.yaml'), join(dir, 'new.yaml'), '--decisions', '-', '-o', 'json'], { input: readFileSync(recording), encoding: 'utf8' });
    expect(piped.status).toBe(3);
    expect(JSON.parse(piped.stdout)).toMatchObject({ replayed: 7, changedRequests: 5 });
  });

  it('exits 1 with a message on trouble, 2 on a wrong command line', async () => {
    const r = await cli('policy', 'diff', join(dir, 'old.yaml'), join(dir, 'new.yaml'), '--decisions', join(dir, 'missing.ndjson'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--decisions .*missing\.ndjson: cannot read: ENOENT/);
    const usage = await cli('policy', 'diff', join(dir, 'old.yaml'));
    expect(usage.code).toBe(2);
    expect(usage.stderr).toContain('palisade policy diff: missing policy files (OLD NEW)');
    const help = await cli('policy', 'diff', '--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^usage: palisade policy diff OLD NEW --decisions FILE/);
  });

  it('the CI example (deploy/ci/diff-policies.sh) fails a pull request that changes outcomes, and one with unreviewed changes it cannot replay', () => {
    const repo = join(dir, 'gitops');
    mkdirSync(join(repo, 'policies'), { recursive: true });
    const git = (...a: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...a], { cwd: repo, encoding: 'utf8' });
    git('init', '-q');
    writeFileSync(join(repo, 'policies', 'orders.yaml'), OLD);
    git('add', '.');
    git('commit', '-qm', 'base');
    const script = fileURLToPath(new URL('../../deploy/ci/diff-policies.sh', import.meta.url));
    const env = { ...process.env, PALISADE: `${process.execPath} ${MAIN}` };
    const ci = (extra: Record<string, string> = {}) => spawnSync('bash', [script, 'HEAD', recording, 'policies'], { cwd: repo, encoding: 'utf8', env: { ...env, ...extra } });
    writeFileSync(join(repo, 'policies', 'orders.yaml'), LOCKOUT);
    const lockout = ci();
    expect(lockout.status).toBe(1);
    expect(lockout.stderr).toContain('CHANGES policies/orders.yaml');
    expect(lockout.stdout).toContain('new: deny AUTHN_REQUIRED at authn');
    writeFileSync(join(repo, 'policies', 'orders.yaml'), UNREPLAYABLE);
    expect(ci().status).toBe(1);
    expect(ci({ PALISADE_DIFF_ACCEPT_UNREPLAYED: '1' }).status).toBe(0);
    writeFileSync(join(repo, 'policies', 'orders.yaml'), OLD);
    const same = ci();
    expect(same.status).toBe(0);
  });
});
