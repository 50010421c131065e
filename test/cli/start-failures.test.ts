// A long-running command that cannot start says why in one line and exits 1, without a stack
// and without hanging: a port in use (naming the flag and the PALISADE_* variable that change it),
// a certificate file that is not there (naming the variable).
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publicItemsPolicy } from '../support/harness.ts';
import { sidecarProcessBed } from '../support/sidecar-process.ts';
import { palisade } from './support/run.ts';

let taken: Server;
let port = 0;
beforeAll(async () => {
  taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  port = (taken.address() as { port: number }).port;
});
afterAll(() => taken.close());

describe('palisade sidecar', () => {
  const bed = sidecarProcessBed(publicItemsPolicy('start-failures'));

  it('its port in use: one line naming --port and PALISADE_LISTEN_PORT, exit 1', async () => {
    const r = await palisade(['sidecar', '--port', String(port)], { env: { ...bed.env(), PALISADE_LOG_LEVEL: 'error' } });
    expect(r.stderr).toBe(`palisade sidecar: cannot listen on 127.0.0.1:${port}: the port is already in use; stop what uses it or choose another port with --port N or PALISADE_LISTEN_PORT\n`);
    expect(r.code).toBe(1);
  });

  it('its admin port in use: names --admin-port and PALISADE_ADMIN_PORT', async () => {
    const r = await palisade(['sidecar'], { env: { ...bed.env(), PALISADE_ADMIN_PORT: String(port), PALISADE_LOG_LEVEL: 'error' } });
    expect(r.stderr).toBe(`palisade sidecar: cannot listen on 127.0.0.1:${port}: the port is already in use; stop what uses it or choose another port with --admin-port N or PALISADE_ADMIN_PORT\n`);
    expect(r.code).toBe(1);
  });

  it('a certificate file that is not there: names the variable', async () => {
    const r = await palisade(['sidecar'], { env: { ...bed.env(), PALISADE_TLS_CERT: '/nonexistent/palisade/tls.crt', PALISADE_LOG_LEVEL: 'error' } });
    expect(r.stderr).toBe('palisade sidecar: cannot read /nonexistent/palisade/tls.crt (ENOENT), set by PALISADE_TLS_CERT\n');
    expect(r.code).toBe(1);
  });
});

describe('palisade detector and webhook', () => {
  it('the detector\'s admin port in use: one line, exit 1, before touching Kafka', async () => {
    const r = await palisade(['detector'], { env: { PALISADE_KAFKA_BROKERS: '127.0.0.1:1', PALISADE_DETECTOR_ADMIN_HOST: '127.0.0.1', PALISADE_DETECTOR_ADMIN_PORT: String(port) } });
    expect(r.stderr).toBe(`palisade detector: cannot listen on 127.0.0.1:${port}: the port is already in use; stop what uses it or choose another port with --admin-port N or PALISADE_DETECTOR_ADMIN_PORT\n`);
    expect(r.code).toBe(1);
  });

  it('the webhook without its serving certificate: names the variable and the flag', async () => {
    const r = await palisade(['webhook', '--tls-cert', '/nonexistent/webhook/tls.crt', '--port', '0', '--host', '127.0.0.1']);
    expect(r.stderr).toBe('palisade webhook: cannot read the serving certificate /nonexistent/webhook/tls.crt (ENOENT); set PALISADE_WEBHOOK_TLS_CERT or --tls-cert FILE\n');
    expect(r.code).toBe(1);
  });
});
