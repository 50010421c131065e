/**
 * Memory, load time and lookup cost of the block list, in process:
 *
 * - bytes per entry: V8 heap plus typed-array backing stores after a full GC
 *   (process.memoryUsage heapUsed + arrayBuffers), before and after filling a
 *   store, for each kind alone and for the benchmark's 100,000-entry mix
 *   (bench/lib/fixtures.ts blockEntries: 60% IPv4, 20% IPv4 /24, 10% IPv6 /64,
 *   5% subjects, 5% token ids); and for a policy holding those entries
 *   (spec.blocklist.entries, compiled while the policy loads: the document
 *   keeps none of them), loaded in a fresh process, as a sidecar keeps it;
 * - load: milliseconds to add the 100,000-entry mix to an empty store;
 * - lookup: CPU microseconds per lookup at 100,000 entries, hit and miss,
 *   for a client IP (longest-prefix match over every prefix length in use)
 *   and an identity. A hit makes the BlockEntry the stage reports (kept in a
 *   small cache, so the same client again is cheaper than 1,024 of them).
 * CPU time (process.cpuUsage), so other load on the machine counts little.
 *
 *   node --expose-gc bench/blocklist.ts [entries] [rounds]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BlockListStore } from '../src/blocklist/store.ts';
import type { BlockEntryInput, BlockKind } from '../src/blocklist/entry.ts';
import { parseIp, type ParsedIp } from '../src/http/cidr.ts';
import { createLogger } from '../src/log/logger.ts';
import { loadPolicyFile } from '../src/policy/load.ts';
import { policyBlocklist } from '../src/blocklist/policy-blocklist.ts';
import { createServices } from '../src/sidecar/compose.ts';
import { blockEntries } from './lib/fixtures.ts';

const N = Number(process.argv[2] ?? 100_000);
const ROUNDS = Number(process.argv[3] ?? 5);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error('run with node --expose-gc bench/blocklist.ts');
  process.exit(2);
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1] as number;
const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

function used(): number {
  for (let i = 0; i < 4; i++) gc!();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

if (process.argv[2] === '--policy-child') {
  const services = createServices(createLogger({ level: 'silent' }));
  const t0 = performance.now();
  const policy = await loadPolicyFile(process.argv[3] as string, services);
  const ms = performance.now() - t0;
  const heap = used();
  process.stdout.write(JSON.stringify({ heap, rss: process.memoryUsage().rss, ms, n: policyBlocklist(policy.document, Date.now()).index.size }));
  process.exit(0);
}

const KINDS = ['ip', 'cidr', 'subject', 'spiffeId', 'clientId', 'tokenId'] as const;
/** The benchmark policy's entries as store inputs. */
function mix(n: number): BlockEntryInput[] {
  return flat(
    (blockEntries(n) as Record<string, string>[]).map((e) => {
      const kind = KINDS.find((k) => e[k] !== undefined) as BlockKind;
      return { kind, value: e[kind] as string, reason: e.reason as string, source: 'policy' };
    }),
  );
}
/**
 * Values as a store receives them: decoded from JSON (a Kafka record, a
 * policy file), so flat strings, not the concatenations a template literal
 * makes (which V8 keeps as two-part strings, larger).
 */
function flat(inputs: BlockEntryInput[]): BlockEntryInput[] {
  return JSON.parse(JSON.stringify(inputs)) as BlockEntryInput[];
}
/** One kind alone, values of realistic length. */
function only(kind: string, n: number): BlockEntryInput[] {
  const out: BlockEntryInput[] = [];
  for (let i = 0; i < n; i++) {
    const b = [(i >> 16) & 255, (i >> 8) & 255, i & 255];
    if (kind === 'ip v4') out.push({ kind: 'ip', value: `10.${b[0]}.${b[1]}.${b[2]}`, reason: 'scanner', source: 'detector' });
    else if (kind === 'ip v6') out.push({ kind: 'ip', value: `2001:db8::${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}`, reason: 'scanner', source: 'detector' });
    else if (kind === 'cidr v4 /24') out.push({ kind: 'cidr', value: `${20 + b[0]!}.${b[1]}.${b[2]}.0/24`, reason: 'hosting range', source: 'detector' });
    else if (kind === 'cidr v6 /64') out.push({ kind: 'cidr', value: `2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::/64`, reason: 'v6 range', source: 'detector' });
    else if (kind === 'subject') out.push({ kind: 'subject', value: `user-${String(i).padStart(8, '0')}`, reason: 'fraud', source: 'detector' });
    else if (kind === 'spiffeId') out.push({ kind: 'spiffeId', value: `spiffe://prod.example/ns/shop/sa/svc-${i}`, reason: 'compromised', source: 'detector' });
    else if (kind === 'clientId') out.push({ kind: 'clientId', value: `client-${i.toString(36)}-app`, reason: 'abuse', source: 'detector' });
    else out.push({ kind: 'tokenId', value: `0190c1de-7a2b-7c3d-8e4f-${String(i).padStart(12, '0')}`, reason: 'leaked token', source: 'detector', ttlMs: 3_600_000 });
  }
  return flat(out);
}

/**
 * Fills a store from inputs made inside the measured window (so the values a
 * store keeps, e.g. identity strings, count; the input objects are garbage by
 * the second reading). Load time covers the adds only.
 */
function perEntry(make: () => BlockEntryInput[]): { bytes: number; loadMs: number; loadCpuMs: number; store: BlockListStore } {
  const before = used();
  const store = new BlockListStore();
  let inputs: BlockEntryInput[] | null = make();
  const n = inputs.length;
  const t0 = performance.now();
  const c0 = cpuUs();
  for (const e of inputs) store.add(e);
  const loadCpuMs = (cpuUs() - c0) / 1000;
  const loadMs = performance.now() - t0;
  inputs = null;
  const after = used();
  return { bytes: (after - before) / n, loadMs, loadCpuMs, store };
}

let sink = 0;

console.log(`block list, ${N.toLocaleString('en-US')} entries, node ${process.version}, medians of ${ROUNDS}`);
console.log('\nbytes per entry (heap + typed arrays, after GC; inputs made before the first reading):');
for (const kind of ['ip v4', 'ip v6', 'cidr v4 /24', 'cidr v6 /64', 'subject', 'spiffeId', 'clientId', 'tokenId']) {
  const rounds: number[] = [];
  for (let r = 0; r < Math.min(3, ROUNDS); r++) {
    const x = perEntry(() => only(kind, N));
    rounds.push(x.bytes);
    x.store.close();
  }
  const first = only(kind, 1)[0] as BlockEntryInput;
  console.log(`  ${kind.padEnd(14)} ${median(rounds).toFixed(0).padStart(5)} B   (values like "${first.value}", ${first.value.length} chars)`);
}

const loads: number[] = [];
const loadsCpu: number[] = [];
const bytes: number[] = [];
let store: BlockListStore | null = null;
for (let r = 0; r < ROUNDS; r++) {
  store?.close();
  store = null;
  const x = perEntry(() => mix(N));
  loads.push(x.loadMs);
  loadsCpu.push(x.loadCpuMs);
  bytes.push(x.bytes);
  store = x.store;
}
console.log(`  ${'benchmark mix'.padEnd(14)} ${median(bytes).toFixed(0).padStart(5)} B   (the run-time store: detector / Kafka feed)`);
console.log(`\nload: ${N.toLocaleString('en-US')} entries (benchmark mix) added in ${median(loadsCpu).toFixed(0)} ms of CPU, ${median(loads).toFixed(0)} ms elapsed (medians of ${ROUNDS}; parsing and checking each entry included)`);

// Policy path: the same entries as spec.blocklist.entries of a policy file, each size loaded in a
// process of its own (a fresh heap: what a sidecar starting with that policy keeps).
const dir = mkdtempSync(join(tmpdir(), 'palisade-bench-blocklist-'));
try {
  const rows: { n: number; heap: number; rss: number; ms: number }[] = [];
  for (const n of [0, N]) {
    const file = join(dir, `policy-${n}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        apiVersion: 'palisade.dev/v1',
        kind: 'Policy',
        metadata: { name: 'bench-blocklist', version: '1' },
        spec: { authorization: { rules: [{ id: 'open', paths: ['/**'], public: true }] }, blocklist: { entries: blockEntries(n) } },
      }),
    );
    const out = execFileSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--policy-child', file], { encoding: 'utf8' });
    rows.push({ n, ...(JSON.parse(out) as { heap: number; rss: number; ms: number }) });
  }
  const [empty, full] = rows as [(typeof rows)[0], (typeof rows)[0]];
  console.log(
    `\npolicy with ${N.toLocaleString('en-US')} entries, each in a fresh process: ${((full.heap - empty.heap) / N).toFixed(0)} B per entry kept (heap + typed arrays: the compiled entries, the document keeps none), RSS +${((full.rss - empty.rss) / 2 ** 20).toFixed(0)} MiB (${((full.rss - empty.rss) / N).toFixed(0)} B per entry, includes heap room V8 keeps after the load's garbage), loaded in ${full.ms.toFixed(0)} ms (read, parse, validate, compile)`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// Lookups at N entries (the benchmark mix), hit and miss.
const s = store as BlockListStore;
const hitIps: ParsedIp[] = [];
const missIps: ParsedIp[] = [];
const inputs = mix(N);
// Hits: blocked addresses, addresses inside blocked IPv4 /24s and IPv6 /64s (a quarter each way).
const ipEntries = inputs.filter((e) => e.kind === 'ip');
const v4Nets = inputs.filter((e) => e.kind === 'cidr' && !e.value.includes(':'));
const v6Nets = inputs.filter((e) => e.kind === 'cidr' && e.value.includes(':'));
for (let i = 0; i < 1024; i++) {
  const pick = <T>(a: T[]) => a[(i * 7919) % a.length] as T;
  const r = i & 3;
  const text = r < 2 ? pick(ipEntries).value : r === 2 ? pick(v4Nets).value.replace(/\.0\/24$/, '.77') : pick(v6Nets).value.replace(/::\/64$/, '::77');
  hitIps.push(parseIp(text) as ParsedIp);
  missIps.push(parseIp(i % 4 === 3 ? `2001:db9::${i.toString(16)}` : `192.0.2.${i & 255}`) as ParsedIp);
}
const hitIds = inputs.filter((e) => e.kind === 'subject').slice(0, 1024).map((e) => e.value);
const missIds = hitIds.map((v) => `${v}-not`);
for (const ip of hitIps) if (!s.matchIp(ip, 0)) throw new Error('a hit address did not match');
for (const ip of missIps) if (s.matchIp(ip, 0)) throw new Error('a miss address matched');
const cases: [string, (i: number) => unknown][] = [
  ['client IP, hit, same client', () => s.matchIp(hitIps[5] as ParsedIp, 0)],
  ['client IP, hit, 1,024 clients', (i) => s.matchIp(hitIps[i & 1023] as ParsedIp, 0)],
  ['client IP, miss (v4 and v6)', (i) => s.matchIp(missIps[i & 1023] as ParsedIp, 0)],
  ['identity, hit, 1,024 ids', (i) => s.matchId('subject', hitIds[i & 1023] as string, 0)],
  ['identity, miss', (i) => s.matchId('subject', missIds[i & 1023] as string, 0)],
];
const L = 200_000;
console.log(`\nlookup at ${N.toLocaleString('en-US')} entries, CPU µs per lookup (median of ${ROUNDS}):`);
for (const [label, run] of cases) {
  const r: number[] = [];
  for (let k = 0; k < ROUNDS; k++) {
    const c0 = cpuUs();
    for (let i = 0; i < L; i++) if (run(i)) sink++;
    r.push((cpuUs() - c0) / L);
  }
  console.log(`  ${label.padEnd(30)} ${median(r).toFixed(3)} µs`);
}
if (sink < 0) console.log(sink);
s.close();
