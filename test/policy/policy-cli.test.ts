/**
 * The `palisade policy` command as a user runs it: help on every subcommand,
 * usage errors (exit 2), explain's exit status, headers and body, `policy
 * test` and the CI example that runs it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { palisade } from '../cli/support/run.ts';

const ROOT = resolve(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'palisade-policy-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const POLICY = join(dir, 'policy.yaml');
writeFileSync(
  POLICY,
  `apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: tenants, version: "7" }
spec:
  authentication:
    jwt:
      issuers: [{ issuer: "https://idp.example.com/", jwksUri: "https://idp.example.com/jwks", audiences: [orders] }]
    defaultRequire: jwt
  authorization:
    rules:
      - id: own-tenant
        methods: [GET, POST]
        paths: ["/tenants/{tenantId}/orders"]
        authenticated: true
        when: [{ claim: tenant, equalsParam: tenantId }]
  validation:
    unknownRoutes: deny
    routes:
      - id: create-order
        method: POST
        path: "/tenants/{tenantId}/orders"
        body:
          required: true
          content:
            application/json: { type: object, required: [sku], properties: { sku: { type: string } }, additionalProperties: false }
      - { id: list-orders, method: GET, path: "/tenants/{tenantId}/orders" }
`,
);

describe('palisade policy: help and usage', () => {
  it('--help and -h on the group and every subcommand print usage and exit 0; nothing is read', async () => {
    const all = [['policy', '--help'], ['policy', '-h'], ['policy', 'check', '--help'], ['policy', 'explain', '-h'], ['policy', 'test', '--help'], ['policy', 'diff', '-h']];
    const runs = await Promise.all(all.map((args) => palisade(args)));
    for (const [i, args] of all.entries()) {
      const r = runs[i]!;
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout, args.join(' ')).toMatch(/usage: palisade policy/);
      expect(r.stderr).toBe('');
    }
  });

  it('a wrong command line exits 2 with one line saying what is wrong', async () => {
    const cases: [string[], RegExp][] = [
      [['policy', 'check'], /palisade policy check: missing policy file/],
      [['policy', 'explain', POLICY], /--path is required/],
      [['policy', 'explain', POLICY, '--path', '/x', '--nope'], /unknown flag --nope/],
      [['policy', 'explain', POLICY, '--path', '/x', '-H', 'no-colon'], /write a header as 'name: value'/],
      [['policy', 'test', POLICY], /missing POLICY and test files/],
      [['policy', 'frobnicate'], /unknown subcommand "frobnicate"/],
    ];
    const runs = await Promise.all(cases.map(([args]) => palisade(args)));
    for (const [i, [args, message]] of cases.entries()) {
      const r = runs[i]!;
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
    }
  });
});

describe('palisade policy explain', () => {
  it('exits 3 on a deny and names the values of the failed condition; JSON carries the policy hash', async () => {
    const r = await palisade(['policy', 'explain', POLICY, '--path', '/tenants/acme/orders', '--subject', 'bob', '--claims', '{"tenant":"globex"}']);
    expect(r.code).toBe(3);
    expect(r.stdout).toContain('allow rule "own-tenant" matches but its conditions do not hold: claim tenant = globex, param tenantId = acme');
    expect(r.stdout).toContain('verdict: DENY AUTHZ_CONDITION_FAILED by rule "own-tenant" at stage authz');
    const j = await palisade(['policy', 'explain', POLICY, '--path', '/tenants/acme/orders', '--subject', 'alice', '--claims', '{"tenant":"acme"}', '-o', 'json']);
    expect(j.code).toBe(0);
    const out = JSON.parse(j.stdout) as { verdict: string; rule: string; policy: { name: string; version: string; hash: string } };
    expect(out).toMatchObject({ verdict: 'allow', rule: 'own-tenant', policy: { name: 'tenants', version: '7' } });
    expect(out.policy.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('judges a body file and headers with the validation stage', async () => {
    const good = join(dir, 'good.json');
    const bad = join(dir, 'bad.json');
    writeFileSync(good, '{"sku":"ABC-1"}');
    writeFileSync(bad, '{"sku":"ABC-1","price":0}');
    const args = ['policy', 'explain', POLICY, '--method', 'post', '--path', '/tenants/acme/orders', '--subject', 'alice', '--claims', '{"tenant":"acme"}'];
    const ok = await palisade([...args, '-H', 'Content-Type: application/json', '--body', good]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('verdict: ALLOW by rule "own-tenant"');
    const refused = await palisade([...args, '-H', 'Content-Type: application/json', '--body', bad]);
    expect(refused.code).toBe(3);
    expect(refused.stdout).toMatch(/validation: refused: SCHEMA_VIOLATION .*\/body/);
    const wrongType = await palisade([...args, '-H', 'Content-Type: text/plain', '--body', good, '-o', 'yaml']);
    expect(wrongType.code).toBe(3);
    expect(wrongType.stdout).toContain('code: CONTENT_TYPE_NOT_ALLOWED');
    const missing = await palisade([...args, '--body', join(dir, 'nope.json')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/--body .*nope\.json: cannot read: ENOENT/);
  });
});

describe('palisade policy test', () => {
  const tests = join(dir, 'policy.test.yaml');
  writeFileSync(
    tests,
    `tests:
  - name: alice reads her tenant
    request: { path: /tenants/acme/orders, subject: alice, claims: { tenant: acme } }
    expect: { verdict: allow, rule: own-tenant }
  - name: bob cannot read acme
    request: { path: /tenants/acme/orders, subject: bob, claims: { tenant: globex } }
    expect: { verdict: deny, code: AUTHZ_CONDITION_FAILED, stage: authz }
  - name: no token
    request: { path: /tenants/acme/orders }
    expect: { verdict: deny, code: AUTHN_REQUIRED, stage: authn }
  - name: an order needs a body
    request: { method: POST, path: /tenants/acme/orders, subject: alice, claims: { tenant: acme } }
    expect: { verdict: deny, code: SCHEMA_VIOLATION, rule: create-order }
  - name: a valid order
    request: { method: POST, path: /tenants/acme/orders, subject: alice, claims: { tenant: acme }, headers: { content-type: application/json }, body: '{"sku":"X"}' }
    expect: { verdict: allow }
`,
  );

  it('passes when every expectation holds (exit 0), and fails naming what differed (exit 3)', async () => {
    const ok = await palisade(['policy', 'test', POLICY, tests]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('  ok   bob cannot read acme');
    expect(ok.stdout).toContain('5 passed, 0 failed');
    const wrong = join(dir, 'wrong.test.yaml');
    writeFileSync(
      wrong,
      `tests:
  - name: bob reads acme (wrong)
    request: { path: /tenants/acme/orders, subject: bob, claims: { tenant: globex } }
    expect: { verdict: allow }
  - name: wrong code
    request: { path: /tenants/acme/orders }
    expect: { verdict: deny, code: AUTHN_TOKEN_INVALID }
`,
    );
    const r = await palisade(['policy', 'test', POLICY, tests, wrong]);
    expect(r.code).toBe(3);
    expect(r.stdout).toContain('  FAIL bob reads acme (wrong)\n       verdict: expected allow, got deny AUTHZ_CONDITION_FAILED at authz by rule "own-tenant"');
    expect(r.stdout).toContain('       code: expected "AUTHN_TOKEN_INVALID", got "AUTHN_REQUIRED"');
    // The trace of a failing test shows why.
    expect(r.stdout).toContain('       | allow rule "own-tenant" matches but its conditions do not hold: claim tenant = globex, param tenantId = acme');
    expect(r.stdout).toContain('5 passed, 2 failed');
    const j = JSON.parse((await palisade(['policy', 'test', POLICY, wrong, '-o', 'json'])).stdout) as { passed: number; failed: number; policy: { hash: string }; suites: { results: { name: string; passed: boolean }[] }[] };
    expect(j).toMatchObject({ passed: 0, failed: 2 });
    expect(j.policy.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses an invalid test file with the field and the fix (exit 1)', async () => {
    const bad = join(dir, 'bad.test.yaml');
    writeFileSync(bad, 'tests:\n  - name: x\n    request: { path: /a, tennant: 1 }\n    expect: { verdict: deny, code: NOT_A_CODE }\n');
    const r = await palisade(['policy', 'test', POLICY, bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('tests file/tests/0/request: unknown field "tennant"');
    writeFileSync(bad, 'tests:\n  - name: x\n    request: { path: /a }\n    expect: { verdict: deny, code: NOT_A_CODE }\n');
    expect((await palisade(['policy', 'test', POLICY, bad])).stderr).toContain('"NOT_A_CODE" is not a Palisade code; see docs/codes.md');
  });

  it('the CI example (deploy/ci/test-policies.sh) runs the shipped example tests, and fails on a failing one', () => {
    const script = join(ROOT, 'deploy', 'ci', 'test-policies.sh');
    const env = { ...process.env, PALISADE: `${process.execPath} ${join(ROOT, 'bin', 'palisade.js')}` };
    const shipped = spawnSync('bash', [script, join(ROOT, 'deploy')], { encoding: 'utf8', env });
    expect(shipped.status).toBe(0);
    expect(shipped.stdout).toMatch(/7 passed, 0 failed/);
    const own = mkdtempSync(join(dir, 'ci-'));
    writeFileSync(join(own, 'tenants.yaml'), '');
    spawnSync('cp', [POLICY, join(own, 'tenants.yaml')]);
    writeFileSync(join(own, 'tenants.test.yaml'), 'tests:\n  - name: anyone\n    request: { path: /tenants/acme/orders }\n    expect: { verdict: allow }\n');
    writeFileSync(join(own, 'orphan.test.yaml'), 'tests: []\n');
    const r = spawnSync('bash', [script, own], { encoding: 'utf8', env });
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('FAIL anyone');
    expect(r.stderr).toContain(`NO POLICY for ${join(own, 'orphan.test.yaml')}`);
  });
});
