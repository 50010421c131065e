/**
 * `policy diff` on outcomes a recording cannot recompute (rate limits, body
 * schemas): recorded by a real sidecar, kept as facts by the replay, placed
 * at their stage so an earlier stage's change still shows, and dropped when
 * their rule is gone. And the replay's fidelity: every recorded decision,
 * replayed through the policy that made it, comes out as recorded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DecisionRecord } from '../../src/decision/record.ts';
import { decodeDecision, encodeDecision } from '../../src/decision/encode.ts';
import { createLogger } from '../../src/log/logger.ts';
import type { CompiledPolicy } from '../../src/policy/compiled.ts';
import { createDiffer } from '../../src/policy/diff.ts';
import { unreplayedChanges } from '../../src/policy/diff-scope.ts';
import { compilePolicy, parsePolicyText, validatePolicy } from '../../src/policy/load.ts';
import { createReplayer } from '../../src/policy/replay.ts';
import { createServices } from '../../src/sidecar/compose.ts';
import { send, startHarness, until, type Harness } from '../support/harness.ts';

const WEB = 'spiffe://test.local/ns/shop/sa/web';

const policy = (head: string, rules = '') => `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: orders, version: "1" }
spec:
${head}
  authorization:
    rules:
${rules}
      - { id: orders-read, methods: [GET], paths: ["/orders/**"], authenticated: true }
      - { id: orders-write, methods: [POST], paths: [/orders], authenticated: true }
  validation:
    unknownRoutes: allow
    routes:
      - id: create-order
        method: POST
        path: /orders
        body:
          required: true
          content:
            application/json: { type: object, required: [sku], properties: { sku: { type: string } } }
`;

const LIMIT = `  rateLimits:
    rules:
      - { id: per-client, key: [identity], rate: 1, per: minute, burst: 1, paths: ["/orders/{id}"] }`;
const RECORDED = policy(LIMIT);

async function compile(yaml: string): Promise<CompiledPolicy> {
  const { document, hash } = validatePolicy(parsePolicyText(yaml, 'p'), 'p');
  return compilePolicy(document, hash, '/tmp', createServices(createLogger({ level: 'silent' })));
}

describe('policy diff: recorded rate-limit and body outcomes', () => {
  let h: Harness;
  let recording: DecisionRecord[];
  let old: CompiledPolicy;
  beforeAll(async () => {
    h = await startHarness(RECORDED);
    const web = await h.client(WEB);
    expect((await send(web, `${h.base}/orders/1`)).status).toBe(200);
    expect((await send(web, `${h.base}/orders/2`)).status).toBe(429);
    const json = { 'content-type': 'application/json' };
    expect((await send(web, `${h.base}/orders`, { method: 'POST', headers: json, body: '{"qty":1}' })).status).toBe(400);
    expect((await send(web, `${h.base}/orders`, { method: 'POST', headers: json, body: '{"sku":"A-1"}' })).status).toBe(200);
    await until(() => h.decisions.length === 4);
    // Through the event form, as a recording is read back.
    recording = h.decisions.map((r) => decodeDecision(JSON.parse(JSON.stringify(encodeDecision(r)))));
    old = await compile(RECORDED);
  });
  afterAll(async () => {
    await h?.close();
  });

  function diff(next: CompiledPolicy) {
    const d = createDiffer(old, next);
    for (const r of recording) d.add(r);
    return d.summary();
  }

  it('replayed through the policy that made it, every recorded decision comes out as recorded', () => {
    const replayer = createReplayer(old, old);
    const got = recording.map((r) => {
      const o = replayer.replay(r);
      return [r.request.method, r.request.path, o.verdict, o.code, o.stage, o.rule];
    });
    const want = recording.map((r) => [r.request.method, r.request.path, r.verdict, r.verdict === 'allow' ? null : r.code, r.verdict === 'allow' ? null : r.decidedBy, r.rule]);
    expect(got).toEqual(want);
    expect(want.map((w) => w[3])).toEqual([null, 'RATE_LIMITED', 'SCHEMA_VIOLATION', null]);
  });

  it('a removed rate limit lets the limited request through, and is named as not replayed', async () => {
    const next = await compile(policy(''));
    const s = diff(next);
    expect(s.changes.map((c) => [c.path, c.old.code, c.new.verdict])).toEqual([['/orders/2', 'RATE_LIMITED', 'allow']]);
    expect(unreplayedChanges({ policy: old, baseDir: '/tmp' }, { policy: next, baseDir: '/tmp' })).toEqual([{ stage: 'ratelimit', what: 'rate limit "per-client" removed', why: expect.stringContaining('bucket state') }]);
  });

  it('a change of spec.headers (judged on raw header lines, never recorded) is named as not replayed', async () => {
    const next = await compile(policy(`  headers: { methodOverride: { action: strip } }\n${LIMIT}`));
    expect(diff(next).changes).toEqual([]);
    expect(unreplayedChanges({ policy: old, baseDir: '/tmp' }, { policy: next, baseDir: '/tmp' })).toEqual([{ stage: 'request', what: 'headers.methodOverride changed', why: expect.stringContaining('raw header lines are not recorded') }]);
  });

  it('a rate-limit stage put in audit turns the recorded limit into would_deny', async () => {
    const s = diff(await compile(policy(`  auditStages: [ratelimit]\n${LIMIT}`)));
    expect(s.changes.map((c) => [c.path, `${c.old.verdict} ${c.old.code}`, `${c.new.verdict} ${c.new.code} ${c.new.stage}`])).toEqual([['/orders/2', 'deny RATE_LIMITED', 'would_deny RATE_LIMITED ratelimit']]);
  });

  it('kept outcomes stay at their stage: an earlier stage that now denies shows, a later one does not', async () => {
    const s = diff(await compile(policy(LIMIT, '      - { id: freeze, effect: deny, paths: ["/orders/**"] }')));
    const changes = s.changes.map((c) => [c.method, c.path, `${c.old.verdict} ${c.old.code ?? ''}`.trim(), `${c.new.verdict} ${c.new.code} ${c.new.stage}`, c.old.notes.length > 0 || c.new.notes.length > 0]);
    expect(changes).toEqual([
      ['GET', '/orders/1', 'allow', 'deny AUTHZ_DENY_RULE authz', false],
      // Refused by its body before; authorization, which runs first, now refuses it.
      ['POST', '/orders', 'deny SCHEMA_VIOLATION', 'deny AUTHZ_DENY_RULE authz', true],
      ['POST', '/orders', 'allow', 'deny AUTHZ_DENY_RULE authz', false],
    ]);
    // The rate-limited request was refused before authorization: unchanged.
    expect(s.changes.find((c) => c.path === '/orders/2')).toBeUndefined();
  });
});
