/**
 * The runner alone decides whether a deny is enforced or recorded as would_deny: stages
 * say what they found (and whether the rule that found it is itself dry-run); the policy's
 * mode and auditStages come from the compiled policy.
 */
import { describe, expect, it } from 'vitest';
import { judge, runPipeline } from '../../src/pipeline/runner.ts';
import { CONTINUE, deny, type PipelinePolicy, type RequestContext, type Stage, type StageName } from '../../src/pipeline/types.ts';

function policy(stages: Stage[], o: { auditAll?: boolean; auditStages?: StageName[] } = {}): PipelinePolicy {
  return { stages, auditAll: o.auditAll ?? false, auditStages: new Set(o.auditStages ?? []) };
}

function context(p: PipelinePolicy): RequestContext {
  return {
    id: 'r1', traceId: null, start: 0n, receivedAt: 0, method: 'GET', path: '/', query: '', host: 'x', headers: {},
    clientIp: '127.0.0.1', clientPort: 1, serverIp: '127.0.0.1', serverPort: 2, tls: null, policy: p as RequestContext['policy'],
    identity: null, route: null, bytesIn: 0, body: null, bodyStream: null, responseTap: null, timings: [], wouldDeny: [], allowRule: null, responseHeaders: null,
  };
}

const denies = (name: StageName, code: 'BLOCKED' | 'RATE_LIMITED', audit = false): Stage => ({ name, run: () => deny(code, `${name}-rule`, audit ? { audit: true } : {}) });
const passes = (name: StageName): Stage => ({ name, run: () => CONTINUE });

describe('pipeline runner', () => {
  it('enforces the first deny and stops there', async () => {
    const p = policy([passes('blocklist'), denies('ratelimit', 'RATE_LIMITED'), denies('authz', 'BLOCKED')]);
    const ctx = context(p);
    const r = await runPipeline(p.stages, ctx);
    expect(r.deny).toMatchObject({ code: 'RATE_LIMITED', rule: 'ratelimit-rule', stage: 'ratelimit' });
    expect(ctx.timings.map((t) => t.outcome)).toEqual(['continue', 'deny']);
    expect(ctx.wouldDeny).toEqual([]);
  });

  it('records a deny found by a dry-run rule as would_deny and goes on', async () => {
    const p = policy([denies('blocklist', 'BLOCKED', true), passes('authz')]);
    const ctx = context(p);
    expect((await runPipeline(p.stages, ctx)).deny).toBeNull();
    expect(ctx.wouldDeny).toEqual([{ stage: 'blocklist', code: 'BLOCKED', rule: 'blocklist-rule' }]);
    expect(ctx.timings.map((t) => t.outcome)).toEqual(['would_deny', 'continue']);
  });

  it('lets the policy (spec.mode: audit) or its auditStages turn an enforced finding into would_deny', async () => {
    for (const o of [{ auditAll: true }, { auditStages: ['ratelimit' as const] }]) {
      const p = policy([denies('ratelimit', 'RATE_LIMITED')], o);
      const ctx = context(p);
      expect((await runPipeline(p.stages, ctx)).deny).toBeNull();
      expect(ctx.wouldDeny).toEqual([{ stage: 'ratelimit', code: 'RATE_LIMITED', rule: 'ratelimit-rule' }]);
    }
    const other = policy([denies('ratelimit', 'RATE_LIMITED')], { auditStages: ['authz'] });
    expect((await runPipeline(other.stages, context(other))).deny).toMatchObject({ code: 'RATE_LIMITED' });
  });

  it('judges the findings a stage hands over while it goes on, and times that stage as would_deny', async () => {
    const several: Stage = {
      name: 'validation',
      run(ctx) {
        // Two dry-run findings, then nothing enforced.
        expect(judge(ctx, 'validation', deny('BODY_MALFORMED', 'op-a', { audit: true }))).toBe(false);
        expect(judge(ctx, 'validation', deny('ROUTE_UNKNOWN', null, { audit: true }))).toBe(false);
        return CONTINUE;
      },
    };
    const p = policy([several]);
    const ctx = context(p);
    expect((await runPipeline(p.stages, ctx)).deny).toBeNull();
    expect(ctx.wouldDeny.map((w) => w.code)).toEqual(['BODY_MALFORMED', 'ROUTE_UNKNOWN']);
    expect(ctx.timings[0]?.outcome).toBe('would_deny');
    // Without a dry-run rule or mode, the same finding is enforced and nothing is recorded.
    const enforced = context(policy([]));
    expect(judge(enforced, 'validation', deny('BODY_MALFORMED', 'op-a'))).toBe(true);
    expect(enforced.wouldDeny).toEqual([]);
  });

  it('answers synchronously while the stages do, and from the first stage that answers with a promise goes on after it', async () => {
    const p = policy([passes('blocklist'), passes('authn'), passes('authz')]);
    const ctx = context(p);
    const sync = runPipeline(p.stages, ctx);
    expect(sync).not.toBeInstanceOf(Promise);
    expect(sync).toEqual({ deny: null });
    expect(ctx.timings.map((t) => t.stage)).toEqual(['blocklist', 'authn', 'authz']);

    const order: string[] = [];
    const later: Stage = { name: 'validation', run: () => new Promise((resolve) => setTimeout(() => (order.push('validation'), resolve(CONTINUE)), 5)) };
    const after: Stage = { name: 'ratelimit', run: () => (order.push('ratelimit'), deny('RATE_LIMITED', 'r')) };
    const q = policy([passes('blocklist'), later, after, denies('authz', 'BLOCKED')]);
    const c2 = context(q);
    const pending = runPipeline(q.stages, c2);
    expect(pending).toBeInstanceOf(Promise);
    expect(order).toEqual([]);
    expect((await pending).deny).toMatchObject({ code: 'RATE_LIMITED', stage: 'ratelimit' });
    expect(order).toEqual(['validation', 'ratelimit']);
    expect(c2.timings.map((t) => `${t.stage}:${t.outcome}`)).toEqual(['blocklist:continue', 'validation:continue', 'ratelimit:deny']);
  });

  it('a stage that throws fails the run (the handler turns it into a problem answer), sync or after a promise', async () => {
    const boom: Stage = { name: 'authz', run: () => { throw new Error('stage failed'); } };
    const p = policy([passes('blocklist'), boom]);
    expect(() => runPipeline(p.stages, context(p))).toThrow('stage failed');
    const slow: Stage = { name: 'validation', run: () => Promise.resolve(CONTINUE) };
    const q = policy([slow, boom]);
    await expect(runPipeline(q.stages, context(q))).rejects.toThrow('stage failed');
  });
});
