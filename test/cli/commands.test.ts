// Every `palisade` command as a user runs it: --help/-h print usage and exit 0, a wrong command
// line exits 2 with one line saying what is wrong, `palisade settings` shows values and sources,
// and `palisade inject` says "unchanged" on input it already injected.
// The --help check discovers the commands from `palisade --help` and each group's --help, so a new
// command or subcommand is covered without listing it here.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { palisade } from './support/run.ts';

/** The commands `palisade --help` lists, and the subcommands each group's --help lists. */
async function everyCommand(): Promise<string[][]> {
  const top = await palisade(['--help']);
  const names = [...top.stdout.matchAll(/^ {2}(\S+) {2,}/gm)].map((m) => m[1]!);
  const out: string[][] = [];
  for (const name of names) {
    const help = await palisade([name, '--help']);
    const subs = help.stdout.includes('\nsubcommands:\n') ? [...help.stdout.split('\nsubcommands:\n')[1]!.matchAll(/^ {2}(\S+) {2,}/gm)].map((m) => m[1]!) : [];
    if (subs.length === 0) out.push([name]);
    for (const sub of subs) out.push([name, sub]);
  }
  return out;
}

describe('--help and -h on every command and subcommand', () => {
  it('each prints its usage on stdout and exits 0', { timeout: 300_000 }, async () => {
    const commands = await everyCommand();
    // The ones this file knows must be among them (the discovery itself works).
    for (const c of ['sidecar', 'demo', 'settings', 'inject', 'webhook', 'detector', 'blocklist list', 'blocklist add', 'blocklist remove', 'alerts tail', 'version', 'policy check']) expect(commands.map((x) => x.join(' '))).toContain(c);
    const runs = commands.flatMap((c) => [[...c, '--help'], [...c, '-h']]);
    const failures: string[] = [];
    // A few at a time: each is a Node process.
    for (let i = 0; i < runs.length; i += 4) {
      await Promise.all(
        runs.slice(i, i + 4).map(async (args) => {
          const r = await palisade(args);
          const ok = r.code === 0 && r.stderr === '' && r.stdout.startsWith(`usage: palisade ${args.slice(0, -1).join(' ')}`);
          if (!ok) failures.push(`palisade ${args.join(' ')}: exit ${r.code}, stdout ${JSON.stringify(r.stdout.slice(0, 80))}, stderr ${JSON.stringify(r.stderr.slice(0, 200))}`);
        }),
      );
    }
    expect(failures).toEqual([]);
  });

  it.each([['blocklist'], ['alerts']])('palisade %s --help lists its subcommands, exit 0', async (group) => {
    const r = await palisade([group, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^usage: palisade ${group} <subcommand> \\[options\\]\\n\\nsubcommands:\\n`));
  });

  it('help wins over anything else on the line (nothing starts, nothing is read)', async () => {
    const r = await palisade(['sidecar', '--policy', '/nonexistent/policy.yaml', '--bogus', '-h']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: palisade sidecar/);
  });
});

describe('a wrong command line exits 2 with one line and a pointer to --help', () => {
  it.each([
    [['sidecar', 'policy.yaml'], 'palisade sidecar: takes no arguments; unexpected "policy.yaml"'],
    [['sidecar', '--polcy', 'p.yaml'], 'palisade sidecar: unknown flag --polcy'],
    [['sidecar', '--port'], 'palisade sidecar: --port needs a value'],
    [['demo', 'now'], 'palisade demo: takes no arguments; unexpected "now"'],
    [['demo', '--port', '8443x'], 'palisade demo: --port "8443x": give a port number, 0-65535'],
    [['detector', '--config'], 'palisade detector: --config needs a value'],
    [['detector', 'config.yaml'], 'palisade detector: takes no arguments; unexpected "config.yaml"'],
    [['webhook', '--bogus'], 'palisade webhook: unknown flag --bogus'],
    [['settings', '--port', '1'], 'palisade settings: unknown flag --port; component flags need the component first, e.g. palisade settings sidecar --port 9443'],
    [['settings', 'gateway'], 'palisade settings: unknown component "gateway"; use sidecar, detector or webhook'],
    [['settings', 'sidecar', '--config', 'x'], 'palisade settings sidecar: unknown flag --config'],
    [['inject', '--in-place'], 'palisade inject: --in-place needs FILE arguments and no --output'],
    [['inject', '-o', 'yaml'], 'palisade inject: -o yaml: for inject, -o names the output FILE (the output is always YAML, or JSON for JSON input); write ./yaml for a file of that name'],
  ])('%j', async (args, message) => {
    const r = await palisade(args);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`${message}\nRun "${message.slice(0, message.indexOf(':'))} --help" for usage.\n`);
    expect(r.code).toBe(2);
  });
});

describe('palisade settings', () => {
  const env = { PALISADE_LISTEN_PORT: '9443', PALISADE_OTLP_ENDPOINT: 'http://collector:s3cret@otel.example:4318', PALISADE_DETECTOR_ADMIN_HOST: '127.0.0.1' };

  it('shows each PALISADE_* variable with its value and source, sidecar, detector and webhook', async () => {
    const r = await palisade(['settings'], { env });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^sidecar:\n {2}NAME +VALUE +SOURCE\n/);
    expect(r.stdout).toMatch(/^ {2}PALISADE_LISTEN_PORT +9443 +environment$/m);
    expect(r.stdout).toMatch(/^ {2}PALISADE_ADMIN_PORT +9901 +default$/m);
    expect(r.stdout).toMatch(/^detector:\n {2}NAME +VALUE +SOURCE\n {2}PALISADE_DETECTOR_CONFIG +"" +default\n/m);
    expect(r.stdout).toMatch(/^ {2}PALISADE_DETECTOR_ADMIN_HOST +127\.0\.0\.1 +environment$/m);
    expect(r.stdout).toMatch(/^webhook:\n/m);
    // A password in a URL is not printed.
    expect(r.stdout).not.toContain('s3cret');
    expect(r.stdout).toMatch(/^ {2}PALISADE_OTLP_ENDPOINT +http:\/\/collector:\*\*\*@otel\.example:4318 +environment$/m);
  });

  it('shows a flag as the source when the component is named, as JSON or YAML', async () => {
    const r = await palisade(['settings', 'sidecar', '--port', '7443', '--upstream', 'http://127.0.0.1:9000', '-o', 'json'], { env });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { sidecar: { name: string; value: unknown; source: string }[] };
    expect(Object.keys(out)).toEqual(['sidecar']);
    const by = new Map(out.sidecar.map((s) => [s.name, s]));
    expect(by.get('PALISADE_LISTEN_PORT')).toEqual({ name: 'PALISADE_LISTEN_PORT', value: 7443, source: 'flag --port' });
    expect(by.get('PALISADE_UPSTREAM')).toEqual({ name: 'PALISADE_UPSTREAM', value: 'http://127.0.0.1:9000', source: 'flag --upstream' });
    expect(by.get('PALISADE_REQUIRE_CLIENT_CERT')).toEqual({ name: 'PALISADE_REQUIRE_CLIENT_CERT', value: true, source: 'default' });
    const y = await palisade(['settings', 'detector', '--brokers', 'kafka-0:9092', '-o', 'yaml'], { env });
    const det = (parseYaml(y.stdout) as { detector: { name: string; value: unknown; source: string }[] }).detector;
    expect(det.find((s) => s.name === 'PALISADE_KAFKA_BROKERS')).toEqual({ name: 'PALISADE_KAFKA_BROKERS', value: 'kafka-0:9092', source: 'flag --brokers' });
    // The detector's client id is its own unless set.
    expect(det.find((s) => s.name === 'PALISADE_KAFKA_CLIENT_ID')).toEqual({ name: 'PALISADE_KAFKA_CLIENT_ID', value: 'palisade-detector', source: 'default' });
    const set = JSON.parse((await palisade(['settings', 'detector', '--json'], { env: { PALISADE_KAFKA_CLIENT_ID: 'det-7' } })).stdout) as { detector: { name: string; value: unknown; source: string }[] };
    expect(set.detector.find((s) => s.name === 'PALISADE_KAFKA_CLIENT_ID')).toEqual({ name: 'PALISADE_KAFKA_CLIENT_ID', value: 'det-7', source: 'environment' });
  });

  it('a bad value fails as it would at start: exit 1, naming the variable', async () => {
    const r = await palisade(['settings'], { env: { PALISADE_LISTEN_PORT: 'eighty' } });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/PALISADE_LISTEN_PORT: must be integer/);
  });

  it('--markdown prints the README settings table', async () => {
    const r = await palisade(['settings', '--markdown']);
    expect(r.code).toBe(0);
    const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
    expect(readme).toContain(r.stdout.trimEnd());
  });
});

describe('palisade inject says unchanged on injected input', () => {
  it('a second inject reports "unchanged" and writes the same bytes', async () => {
    const fixture = readFileSync(join(import.meta.dirname, '..', 'deploy', 'fixtures', 'inject', 'deployment.yaml'), 'utf8');
    const once = await palisade(['inject'], { stdin: fixture });
    expect(once.code).toBe(0);
    expect(once.stderr).toContain('Deployment shop/orders injected\n');
    const twice = await palisade(['inject'], { stdin: once.stdout });
    expect(twice.code).toBe(0);
    expect(twice.stdout).toBe(once.stdout);
    expect(twice.stderr).toBe('Deployment shop/orders unchanged (already injected with these options)\n');
  });
});
