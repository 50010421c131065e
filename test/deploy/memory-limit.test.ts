// `palisade sidecar` at saturation inside a 256 MiB memory limit, as the injector's default
// (src/deploy/inject/options.ts) gives a pod: the benchmark's full policy (mTLS + JWT + RBAC +
// rate limits + body schema + 100,000 block entries), NDJSON or Kafka decisions (the real broker), a closed loop of 32
// keep-alive mTLS connections for 10 s. The process runs in a memory cgroup of its own from its
// first instruction (cgroup v1 memory.limit_in_bytes, or v2 memory.max), and the policy is
// reloaded midway (both 100,000-entry policies held at once): it must not be killed, every
// request must be answered, the new policy applied, and one decision per answered request.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Pool } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fullPolicy, makeFixtures, type Fixtures } from '../../bench/lib/fixtures.ts';
import { startUpstream, until, type Upstream } from '../support/harness.ts';
import { BROKERS, deleteTopics, readTopic, uniqueTopic } from '../decision/sinks/kafka/support.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const LIMIT = 256 * 1024 * 1024;
const CONNECTIONS = 32;
const SECONDS = 10;

/** A memory cgroup this machine lets us create, or why not. */
interface MemoryCgroup {
  readonly dir: string;
  /** The file a process id is written to, to move that process in. */
  readonly procs: string;
  /** Peak usage, bytes. */
  peak(): number;
  /** Times the kernel's OOM killer killed a process of the group. */
  oomKills(): number;
  remove(): void;
}

function makeCgroup(name: string, limit: number): MemoryCgroup | string {
  const v1 = '/sys/fs/cgroup/memory';
  const v2 = '/sys/fs/cgroup';
  let made: string | null = null;
  try {
    if (existsSync(join(v1, 'memory.limit_in_bytes'))) {
      const dir = join(v1, name);
      mkdirSync(dir);
      made = dir;
      writeFileSync(join(dir, 'memory.limit_in_bytes'), String(limit));
      // With swap accounting, the same limit on memory + swap: the limit must not become "spill to swap".
      if (existsSync(join(dir, 'memory.memsw.limit_in_bytes'))) writeFileSync(join(dir, 'memory.memsw.limit_in_bytes'), String(limit));
      return {
        dir,
        procs: join(dir, 'cgroup.procs'),
        peak: () => Number(readFileSync(join(dir, 'memory.max_usage_in_bytes'), 'utf8')),
        oomKills: () => Number(/oom_kill (\d+)/.exec(readFileSync(join(dir, 'memory.oom_control'), 'utf8'))?.[1] ?? 0),
        remove: () => rmdirSync(dir),
      };
    }
    if (readFileSync(join(v2, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('memory')) {
      const dir = join(v2, name);
      mkdirSync(dir);
      made = dir;
      writeFileSync(join(dir, 'memory.max'), String(limit));
      if (existsSync(join(dir, 'memory.swap.max'))) writeFileSync(join(dir, 'memory.swap.max'), '0');
      return {
        dir,
        procs: join(dir, 'cgroup.procs'),
        peak: () => (existsSync(join(dir, 'memory.peak')) ? Number(readFileSync(join(dir, 'memory.peak'), 'utf8')) : NaN),
        oomKills: () => Number(/oom_kill (\d+)/.exec(readFileSync(join(dir, 'memory.events'), 'utf8'))?.[1] ?? 0),
        remove: () => rmdirSync(dir),
      };
    }
    return 'no memory cgroup controller on this machine (neither /sys/fs/cgroup/memory nor a cgroup v2 memory controller)';
  } catch (err) {
    // A group made but not usable (no memory controller delegated to it) is not left behind.
    if (made) {
      try {
        rmdirSync(made);
      } catch {
        // nothing more to do
      }
    }
    return `cannot create a memory cgroup here (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): the test needs root or a delegated cgroup`;
  }
}

const name = (what: string) => `palisade-memory-test-${process.pid}-${what}`;
// Whether this machine lets the test make a memory cgroup at all: a probe group, removed at once.
const probe = makeCgroup(name('probe'), LIMIT);
const reason = typeof probe === 'string' ? probe : null;
if (typeof probe !== 'string') probe.remove();

describe.skipIf(reason !== null)(`the sidecar at saturation inside a 256 MiB memory limit${reason ? ` (skipped: ${reason})` : ''}`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'palisade-memory-limit-'));
  let fx: Fixtures;
  let upstream: Upstream;
  let jwks: Server;
  let sidecar: ChildProcess | undefined;
  const groups: MemoryCgroup[] = [];
  const topics: string[] = [];

  beforeAll(async () => {
    fx = await makeFixtures(dir);
    upstream = await startUpstream();
    const jwksText = readFileSync(fx.jwksFile);
    jwks = createServer((_req, res) => res.end(jwksText));
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    // A failed test may leave the sidecar running: it must not outlive the file (nor keep the group busy).
    if (sidecar && sidecar.exitCode === null && sidecar.signalCode === null) {
      const gone = new Promise((r) => sidecar!.once('exit', r));
      sidecar.kill('SIGKILL');
      await gone;
    }
    await upstream?.close();
    jwks?.close();
    rmSync(dir, { recursive: true, force: true });
    await deleteTopics(topics);
    for (const g of groups) {
      // Emptied when its process exited (the SIGKILL above included).
      try {
        g.remove();
      } catch {
        // reported by the test that failed
      }
    }
  });

  for (const sink of ['ndjson', 'kafka'] as const) {
  it(`${sink === 'kafka' ? 'Kafka' : 'NDJSON'} sink, a policy reload midway: is not killed, answers every request, applies the new policy and writes one decision per request`, { timeout: 180_000 }, async () => {
    const group = makeCgroup(name(sink), LIMIT);
    if (typeof group === 'string') throw new Error(group);
    groups.push(group);
    const topic = uniqueTopic('memory-limit');
    if (sink === 'kafka') topics.push(topic, uniqueTopic('memory-limit-blocklist'), uniqueTopic('memory-limit-alerts'));
    const kafkaEnv: Record<string, string> =
      sink === 'kafka'
        ? { PALISADE_KAFKA_BROKERS: BROKERS, PALISADE_KAFKA_TOPIC_DECISIONS: topic, PALISADE_KAFKA_TOPIC_BLOCKLIST: topics.at(-2)!, PALISADE_KAFKA_TOPIC_ALERTS: topics.at(-1)!, PALISADE_KAFKA_TOPIC_PARTITIONS: '3', PALISADE_SPOOL_DIR: join(dir, `spool-${sink}`) }
        : { PALISADE_DECISIONS_FILE: join(dir, 'decisions.ndjson') };
    const jwksUri = `http://127.0.0.1:${(jwks.address() as { port: number }).port}/jwks.json`;
    const policy = join(dir, `policy-${sink}`, 'policy.json');
    mkdirSync(join(dir, `policy-${sink}`));
    const policyText = fullPolicy(fx, jwksUri, 100_000);
    writeFileSync(policy, policyText);
    // The shell moves itself into the group, then becomes the sidecar: every byte it ever uses is counted.
    const child = spawn('/bin/sh', ['-c', 'echo $$ > "$1" && exec "$0" src/cli/main.ts sidecar', process.execPath, group.procs], {
      cwd: ROOT,
      env: {
        PATH: process.env['PATH'] ?? '',
        PALISADE_POLICY: policy,
        PALISADE_LISTEN_HOST: '127.0.0.1',
        PALISADE_LISTEN_PORT: '0',
        PALISADE_ADMIN_HOST: '127.0.0.1',
        PALISADE_ADMIN_PORT: '0',
        PALISADE_UPSTREAM: upstream.url,
        PALISADE_TLS_CERT: fx.server.cert,
        PALISADE_TLS_KEY: fx.server.key,
        PALISADE_TLS_CA: fx.caFile,
        PALISADE_LOG_LEVEL: 'info',
        ...kafkaEnv,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    sidecar = child;
    const log: string[] = [];
    let port = 0;
    let buf = '';
    child.stderr.on('data', (c: Buffer) => {
      buf += c.toString('utf8');
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (log.length < 2000) log.push(line);
        if (line.includes('"sidecar listening"')) port = (JSON.parse(line) as { tlsPort: number }).tlsPort;
      }
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('close', (code, signal) => r({ code, signal })));
    await until(() => port > 0 || child.exitCode !== null, 120_000);
    expect(port, log.join('\n')).toBeGreaterThan(0);

    const pool = new Pool(`https://127.0.0.1:${port}`, { connections: CONNECTIONS, pipelining: 1, connect: { ca: fx.ca, cert: fx.client.cert, key: fx.client.key, servername: 'localhost' } });
    const answered = new Set<string>();
    const statuses = new Map<number, number>();
    let errors = 0;
    let sent = 0;
    const end = Date.now() + SECONDS * 1000;
    // Midway, the policy is replaced by its next version (renamed into place, as a ConfigMap
    // update does): for a moment the sidecar holds both 100,000-entry policies, under load.
    const reload = setTimeout(() => {
      const next = JSON.parse(policyText) as { metadata: { version: string } };
      next.metadata.version = '2';
      writeFileSync(`${policy}.next`, JSON.stringify(next));
      renameSync(`${policy}.next`, policy);
    }, (SECONDS * 1000) / 3);
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async () => {
        while (Date.now() < end) {
          const i = sent++;
          try {
            const res = await pool.request({ method: 'POST', path: '/orders', body: fx.body, headers: { 'content-type': 'application/json', authorization: `Bearer ${fx.tokens[i % fx.tokens.length]}` } });
            await res.body.dump();
            statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
            const id = res.headers['x-request-id'];
            if (typeof id === 'string') answered.add(id);
          } catch {
            errors++;
          }
        }
      }),
    );
    await pool.close();
    clearTimeout(reload);
    await until(() => log.some((l) => l.includes('"policy loaded"') && l.includes('"version":"2"')), 60_000).catch(() => undefined);
    const peakMiB = group.peak() / 1024 / 1024;
    const oomKills = group.oomKills();
    const alive = child.exitCode === null && child.signalCode === null;
    child.kill('SIGTERM');
    const exit = await exited;
    // The figures, for the report: what the limit had to hold.
    process.stderr.write(`memory-limit test, ${sink} sink: ${sent} requests in ${SECONDS} s (${Math.round(sent / SECONDS)}/s), statuses ${JSON.stringify(Object.fromEntries(statuses))}, errors ${errors}; cgroup peak ${peakMiB.toFixed(0)} MiB of ${LIMIT / 1024 / 1024}, OOM kills ${oomKills}\n`);

    expect(alive, log.slice(-20).join('\n')).toBe(true);
    expect(log.filter((l) => l.includes('"policy loaded"')).map((l) => (JSON.parse(l) as { version: string }).version)).toEqual(['1', '2']);
    expect(oomKills).toBe(0);
    expect(exit, log.slice(-20).join('\n')).toEqual({ code: 0, signal: null });
    expect(errors).toBe(0);
    expect(statuses.get(200)).toBe(sent); // the benchmark's client and tokens are allowed
    expect(answered.size).toBe(sent);

    const lines = sink === 'kafka' ? (await readTopic(topic, sent, 60_000)).map((m) => m.value) : readFileSync(kafkaEnv['PALISADE_DECISIONS_FILE']!, 'utf8').split('\n').filter(Boolean);
    const events = lines.map((l) => JSON.parse(l) as { http_request: { uid: string } });
    const ids = new Set(events.map((e) => e.http_request.uid));
    expect(ids.size).toBe(events.length); // one event per request
    expect(events.length).toBe(sent);
    for (const id of answered) expect(ids.has(id), `no decision for request ${id}`).toBe(true);
  });
  }
});
