// The response CLI and the detector process, run as a security engineer would: `palisade detector`
// (admin /livez /readyz /metrics, SIGTERM), `palisade blocklist list|add|remove`, `palisade alerts
// tail`; and clear errors when Kafka is not configured.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kafkajs from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { encodeAlert } from '../../detectors/alerts/ocsf.ts';
import type { Alert } from '../../detectors/detector.ts';
import { createWorld, eventually, type World } from './support/kafka-env.ts';

const { Partitioners } = kafkajs;
const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

function palisade(args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, PALISADE_KAFKA_BROKERS: '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('palisade CLI without Kafka', () => {
  it.each([['detector'], ['blocklist', 'list'], ['alerts', 'tail']])('palisade %s says Kafka is needed and how to set it', async (...args: string[]) => {
    const r = await palisade(args, {});
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/CONFIG_INVALID: palisade .* needs Kafka: set PALISADE_KAFKA_BROKERS/);
  });

  it('palisade blocklist add refuses a bad target before touching Kafka (a usage error, exit 2)', async () => {
    const r = await palisade(['blocklist', 'add', '--ip', 'not-an-ip', '--reason', 'x', '--brokers', '127.0.0.1:1'], {});
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--ip: ip "not-an-ip" is not an IPv4 or IPv6 address/);
  });
});

describe('palisade detector, blocklist and alerts on Kafka', () => {
  let world: World;
  let detector: ChildProcess;
  let adminPort = 0;
  let detectorErr = '';
  let configDir = '';
  beforeAll(async () => {
    world = createWorld('cli');
    // Its own consumer group and state topic: the default group is shared by every detector on the broker.
    configDir = mkdtempSync(join(tmpdir(), 'palisade-cli-detector-'));
    const config = join(configDir, 'detector.json');
    writeFileSync(config, JSON.stringify({ kafka: { groupId: world.groupId, stateTopic: world.stateTopic } }));
    detector = spawn(process.execPath, [MAIN, 'detector'], {
      env: { ...process.env, ...world.env, PALISADE_LOG_LEVEL: 'info', PALISADE_DETECTOR_ADMIN_HOST: '127.0.0.1', PALISADE_DETECTOR_ADMIN_PORT: '0', PALISADE_DETECTOR_CONFIG: config },
    });
    detector.stderr?.on('data', (d: Buffer) => {
      detectorErr += d.toString();
      const m = /"adminPort":(\d+)/.exec(detectorErr);
      if (m) adminPort = Number(m[1]);
    });
    await eventually(() => adminPort > 0, 20_000, 'detector admin listening');
  });
  afterAll(async () => {
    if (detector.exitCode === null) {
      detector.kill('SIGKILL');
      await new Promise((r) => detector.once('exit', r));
    }
    await world?.close();
    if (configDir) rmSync(configDir, { recursive: true, force: true });
  });

  it('serves /livez, /readyz once it consumes, and /metrics', async () => {
    const base = `http://127.0.0.1:${adminPort}`;
    expect((await fetch(`${base}/livez`)).status).toBe(200);
    await eventually(async () => (await fetch(`${base}/readyz`)).status === 200, 30_000, 'detector ready');
    const ready = (await (await fetch(`${base}/readyz`)).json()) as { status: string; partitions: number[] };
    expect(ready.status).toBe('ready');
    expect(ready.partitions).toEqual([0, 1, 2]);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^palisade_detector_events_consumed_total /m);
    expect(metrics).toMatch(/^process_cpu_seconds_total /m);
  });

  it('blocks, lists and unblocks by hand', async () => {
    const env = world.env;
    const add = await palisade(['blocklist', 'add', '--ip', '203.0.113.7', '--reason', 'credential stuffing from a botnet', '--ttl', '2h', '--actor', 'alice'], env);
    expect(add.stderr).toBe('');
    expect(add.code).toBe(0);
    expect(add.stdout).toMatch(/^blocked ip 203\.0\.113\.7 until 20\d\d-/);
    const add2 = await palisade(['blocklist', 'add', '--spiffe-id', 'spiffe://td/ns/x/sa/y', '--reason', 'investigating'], env);
    expect(add2.code).toBe(0);

    const list = await palisade(['blocklist', 'list', '--json'], env);
    expect(list.code).toBe(0);
    const entries = JSON.parse(list.stdout) as { kind: string; value: string; source: string; actor: string; expiresAt: number | null }[];
    expect(entries.find((e) => e.value === '203.0.113.7')).toMatchObject({ kind: 'ip', source: 'manual', actor: 'alice' });
    expect(entries.find((e) => e.value === 'spiffe://td/ns/x/sa/y')?.expiresAt).toBeNull();
    const table = await palisade(['blocklist', 'list'], env);
    expect(table.stdout).toMatch(/^KIND\s+VALUE\s+SOURCE\s+EXPIRES\s+RULE\s+REASON$/m);
    expect(table.stdout).toMatch(/^ip\s+203\.0\.113\.7\s+manual\s+20\d\d-.*credential stuffing from a botnet$/m);

    const rm = await palisade(['blocklist', 'remove', '--ip', '203.0.113.7', '--reason', 'false positive'], env);
    expect(rm.code).toBe(0);
    expect(rm.stdout).toMatch(/^unblocked ip 203\.0\.113\.7/);
    const after = JSON.parse((await palisade(['blocklist', 'list', '--json'], env)).stdout) as { value: string }[];
    expect(after.map((e) => e.value)).toEqual(['spiffe://td/ns/x/sa/y']);
  });

  it('tails alerts: one line per finding with the numbers that explain it', async () => {
    const now = Date.now();
    const alert: Alert = {
      id: '01a21f00-0000-7000-8000-000000000001',
      time: now,
      action: 'block',
      suppressed: null,
      block: { target: { kind: 'spiffeId', value: 'spiffe://td/ns/x/sa/z' }, expiresAt: now + 900_000, durationSeconds: 900 },
      anomaly: {
        detection: 'auth.failures',
        severity: 'high',
        score: 2.6,
        metric: 'auth_failures',
        unit: 'events',
        observed: 52,
        threshold: 20,
        thresholdRule: 'floor 20 (client baseline not used: client in warm-up) and share of requests >= 0.5 (observed 1)',
        baseline: { source: 'none', mean: 0, stddev: 0, samples: 3, unit: 'auth_failures per 60 s' },
        window: { seconds: 60, start: now - 60_000, end: now },
        route: null,
        client: { key: 'spiffe://td/ns/x/sa/z', kind: 'identity', ip: '10.1.2.3', subject: 'spiffe://td/ns/x/sa/z', spiffeId: 'spiffe://td/ns/x/sa/z', tokenId: null },
        evidenceId: '01a21f00-0000-7000-8000-0000000000e1',
        time: now,
        summary: '52 authentication/authorization failures in the last 60 s (100% of 52 requests) (no usable baseline: client in warm-up) (threshold 20)',
      },
    };
    const producer = world.kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    await producer.send({ topic: world.settings.kafkaTopicAlerts, messages: [{ key: alert.anomaly.client.key, value: JSON.stringify(encodeAlert(alert)) }] });
    await producer.disconnect();
    const r = await palisade(['alerts', 'tail', '--from-beginning', '--exit-at-end'], world.env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/HIGH\s+auth\.failures\s+spiffe:\/\/td\/ns\/x\/sa\/z observed 52 > 20 events over 60s \(baseline none\) BLOCKED until 20\d\d-.* alert=01a21f00-0000-7000-8000-000000000001 evidence=01a21f00-0000-7000-8000-0000000000e1/);
    expect(r.stdout).toMatch(/\n {4}52 authentication\/authorization failures in the last 60 s/);
    const json = await palisade(['alerts', 'tail', '--from-beginning', '--exit-at-end', '--json', '--min-severity', 'critical'], world.env);
    expect(json.stdout).toBe('');
    // -o yaml: one YAML document per finding.
    const yaml = await palisade(['alerts', 'tail', '--from-beginning', '--exit-at-end', '-o', 'yaml'], world.env);
    expect(yaml.code).toBe(0);
    const docs = parseAllDocuments(yaml.stdout).map((d) => d.toJS() as { unmapped: { palisade: { detection: string } } });
    expect(docs.map((d) => d.unmapped.palisade.detection)).toEqual(['auth.failures']);
  });

  it('stops cleanly on SIGTERM', async () => {
    detector.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => detector.once('exit', r));
    expect(code).toBe(0);
    expect(detectorErr).toMatch(/shutting down: last checkpoint, then leaving the group/);
  });
});
