/**
 * A real Alertmanager (Debian's `prometheus-alertmanager` package: /usr/bin/prometheus-alertmanager)
 * for tests: its own config and data directory in a temp dir, a free loopback port, clustering off,
 * killed on close. Installed by `bash scripts/ensure-apt.sh prometheus-alertmanager` (scripts/test.sh
 * does it before the tests). The config routes every alert to one webhook receiver (a test HTTP
 * server, see startReceiver) with short group timings, so a test sees notifications within a second.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { listenOnLoopback } from './loopback.ts';
import { startReadyServer } from './ready-server.ts';

export function alertmanagerPath(): string {
  for (const dir of ['/usr/bin', '/usr/local/bin', '/bin']) {
    const p = join(dir, 'prometheus-alertmanager');
    if (existsSync(p)) return p;
  }
  throw new Error('prometheus-alertmanager not found: install it with `bash scripts/ensure-apt.sh prometheus-alertmanager`');
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** An alert as GET /api/v2/alerts returns it (GettableAlert). */
export interface AmAlert {
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly startsAt: string;
  readonly endsAt: string;
  readonly generatorURL?: string;
  readonly fingerprint: string;
  readonly status: { readonly state: 'unprocessed' | 'active' | 'suppressed'; readonly silencedBy: string[]; readonly inhibitedBy: string[] };
}

export interface Alertmanager {
  readonly url: string;
  /** GET /api/v2/alerts (active, silenced and inhibited ones; Alertmanager leaves out resolved alerts). */
  alerts(filter?: readonly string[]): Promise<AmAlert[]>;
  /** POST /api/v2/silences with equality matchers on labels; returns the silence id. */
  silence(labels: Record<string, string>, comment: string, durationMs?: number): Promise<string>;
  /** The process's output so far (for a failing test's message). */
  logs(): string;
  close(): Promise<void>;
}

export interface AlertmanagerOptions {
  /** Where the one receiver sends notifications (send_resolved: true). */
  readonly webhookUrl: string;
  /** Route group_by. Default: alertname and client, so each client is one notification group. */
  readonly groupBy?: readonly string[];
  /** Listen on this port (a restart on the same address); default a free one. */
  readonly port?: number;
}

export async function startAlertmanager(o: AlertmanagerOptions): Promise<Alertmanager> {
  const dir = mkdtempSync(join(tmpdir(), 'palisade-alertmanager-'));
  const config = {
    global: { resolve_timeout: '5m' },
    route: { receiver: 'test', group_by: [...(o.groupBy ?? ['alertname', 'client'])], group_wait: '200ms', group_interval: '500ms', repeat_interval: '1h' },
    receivers: [{ name: 'test', webhook_configs: [{ url: o.webhookUrl, send_resolved: true, max_alerts: 0 }] }],
  };
  const configFile = join(dir, 'alertmanager.yml');
  writeFileSync(configFile, stringify(config));
  const port = o.port ?? (await freePort());
  const url = `http://127.0.0.1:${port}`;
  // An empty cluster address turns gossip off: one instance, nothing to settle, no second port.
  const server = await startReadyServer('alertmanager', alertmanagerPath(), [`--config.file=${configFile}`, `--storage.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`, '--cluster.listen-address=', '--log.level=warn'], url);

  return {
    url,
    async alerts(filter = []) {
      const q = new URLSearchParams();
      for (const f of filter) q.append('filter', f);
      const res = await fetch(`${url}/api/v2/alerts?${q.toString()}`);
      if (!res.ok) throw new Error(`GET /api/v2/alerts: ${res.status} ${await res.text()}`);
      return (await res.json()) as AmAlert[];
    },
    async silence(labels, comment, durationMs = 3_600_000) {
      const now = Date.now();
      const body = {
        matchers: Object.entries(labels).map(([name, value]) => ({ name, value, isRegex: false, isEqual: true })),
        startsAt: new Date(now).toISOString(),
        endsAt: new Date(now + durationMs).toISOString(),
        createdBy: 'palisade-test',
        comment,
      };
      const res = await fetch(`${url}/api/v2/silences`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (!res.ok) throw new Error(`POST /api/v2/silences: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { silenceID: string }).silenceID;
    },
    logs: server.logs,
    async close() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A notification as Alertmanager's webhook receiver gets it (version 4). */
export interface AmNotification {
  readonly version: string;
  readonly status: 'firing' | 'resolved';
  readonly receiver: string;
  readonly groupLabels: Record<string, string>;
  readonly alerts: readonly { readonly status: 'firing' | 'resolved'; readonly labels: Record<string, string>; readonly annotations: Record<string, string>; readonly startsAt: string; readonly endsAt: string; readonly fingerprint: string }[];
}

/** A webhook receiver on loopback that records what Alertmanager delivers. */
export async function startReceiver(): Promise<{ url: string; notifications: AmNotification[]; close: () => Promise<void> }> {
  const notifications: AmNotification[] = [];
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        notifications.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as AmNotification);
        res.end('ok');
      } catch {
        res.statusCode = 400;
        res.end();
      }
    });
  });
  const { port, stop } = await listenOnLoopback(server);
  return { url: `http://127.0.0.1:${port}/alerts`, notifications, close: stop };
}
