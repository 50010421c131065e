/**
 * The request-path cost of a fleet-wide quota (rate-limit rule with scope: global), in process:
 * CPU microseconds per run of the rate-limit stage for a policy with one local rule, the same
 * with a global quota added (the key not over quota: the common case; and over quota: a
 * refusal), against one identity lookup in a block list of the same size. The quota store holds
 * ENTRIES keys over quota, as a busy fleet's sidecar might. CPU time (process.cpuUsage), median
 * of ROUNDS.
 *
 *   node bench/quota.ts [entries] [rounds]
 */
import { BlockListStore } from '../src/blocklist/store.ts';
import { createLogger } from '../src/log/logger.ts';
import type { RequestContext, Stage } from '../src/pipeline/types.ts';
import { compilePolicyText } from '../src/policy/load.ts';
import { quotaStore } from '../src/ratelimit/quota-store.ts';
import { createServices } from '../src/sidecar/compose.ts';

const ENTRIES = Number(process.argv[2] ?? 100_000);
const ROUNDS = Number(process.argv[3] ?? 5);
const OPS = 200_000;
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1] as number;
const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

const policy = (quota: boolean) => `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: bench, version: "1" }
spec:
  authorization: { rules: [{ id: open, paths: [/**], public: true }] }
  rateLimits:
    maxKeys: 1000000
    rules:
      - { id: local, key: [identity], rate: 1000000, per: second }
${quota ? '      - { id: fleet, scope: global, key: [identity], limit: 1000000, window: day }' : ''}
`;

const clients = Array.from({ length: 1024 }, (_, i) => `spiffe://bench.local/ns/a/sa/client-${i}`);
function ctxOf(subject: string): RequestContext {
  return { method: 'GET', path: '/orders', clientIp: '192.0.2.1', route: null, tls: null, identity: { subject, claims: {} }, responseHeaders: null } as unknown as RequestContext;
}

async function stageOf(quota: boolean, over: boolean): Promise<Stage> {
  const services = createServices(createLogger({ level: 'silent' }));
  const now = Date.now();
  const until = now + 3_600_000;
  const store = quotaStore(services);
  for (let i = 0; i < ENTRIES; i++) store.apply({ v: 1, workload: 'bench', rule: 'fleet', key: `spiffe://bench.local/ns/b/sa/other-${i}`, state: 'over', until, windowStart: now, limit: 1, count: 1, sidecars: 3, share: 0, at: now }, now);
  if (over) for (const c of clients) store.apply({ v: 1, workload: 'bench', rule: 'fleet', key: c, state: 'over', until, windowStart: now, limit: 1, count: 1, sidecars: 3, share: 0, at: now }, now);
  const compiled = await compilePolicyText(policy(quota), '/bench.yaml', services);
  return compiled.stages.find((s) => s.name === 'ratelimit') as Stage;
}

function perOp(run: (i: number) => unknown): number {
  const rounds: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = cpuUs();
    for (let i = 0; i < OPS; i++) run(i);
    rounds.push((cpuUs() - t0) / OPS);
  }
  return median(rounds);
}

const ctxs = clients.map(ctxOf);
const runStage = (s: Stage) => (i: number) => {
  const c = ctxs[i & 1023] as RequestContext;
  c.responseHeaders = null;
  c.quotaCharges = undefined;
  return s.run(c);
};
const local = perOp(runStage(await stageOf(false, false)));
const withQuota = perOp(runStage(await stageOf(true, false)));
const refused = perOp(runStage(await stageOf(true, true)));

const bl = new BlockListStore();
for (let i = 0; i < ENTRIES; i++) bl.add({ kind: 'subject', value: `spiffe://bench.local/ns/b/sa/other-${i}`, reason: 'bench', source: 'manual' });
const t = Date.now();
const blockLookup = perOp((i) => bl.matchId('subject', clients[i & 1023] as string, t));

console.log(`rate-limit stage, one local rule: ${local.toFixed(3)} µs per request`);
console.log(`  + a global quota (${ENTRIES} keys over quota held), key not over: ${withQuota.toFixed(3)} µs (+${(withQuota - local).toFixed(3)} µs)`);
console.log(`  + a global quota, key over quota (refusal built): ${refused.toFixed(3)} µs`);
console.log(`block-list identity lookup (${ENTRIES} entries), miss: ${blockLookup.toFixed(3)} µs`);
