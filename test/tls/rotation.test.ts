/**
 * Certificate rotation: new server certificate and trust bundle files are
 * picked up without a restart, open keep-alive connections keep working, and
 * a broken set (key not matching) is refused while the old one stays.
 */
import { writeFileSync } from 'node:fs';
import { connect, type PeerCertificate } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevCa } from '../../src/tls/dev-ca.ts';
import { send, startHarness, type Harness } from '../support/harness.ts';

const POLICY = `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: tls }
spec:
  authorization:
    rules: [{ id: all, paths: ["/**"], public: true }]
`;

async function serverCertSerial(h: Harness, pem: { cert: string; key: string }, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: h.sidecar.tlsPort, ca, cert: pem.cert, key: pem.key, servername: 'localhost' }, () => {
      const c: PeerCertificate = s.getPeerCertificate();
      s.end();
      resolve(c.serialNumber);
    });
    s.on('error', reject);
  });
}

describe('TLS credential rotation', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(POLICY);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('serves a rotated certificate to new connections and keeps open ones alive', async () => {
    const clientPem = await h.pki.client('spiffe://test.local/ns/a/sa/b');
    const agent = await h.client('spiffe://test.local/ns/a/sa/keepalive');
    expect((await send(agent, `${h.base}/before`)).status).toBe(200);
    const serial1 = await serverCertSerial(h, clientPem, h.pki.ca.cert);

    const next = await h.pki.ca.issue({ commonName: 'palisade-sidecar-2', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], usage: 'server' });
    // Write key first, then cert: mid-rotation the pair is briefly mismatched and must be refused, not applied.
    writeFileSync(h.settings.tlsKey, next.key);
    writeFileSync(h.settings.tlsCert, next.cert);
    let serial2 = serial1;
    const end = Date.now() + 15_000;
    while (serial2 === serial1 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 100));
      serial2 = await serverCertSerial(h, clientPem, h.pki.ca.cert);
    }
    expect(serial2).not.toBe(serial1);
    // The keep-alive connection opened before the rotation still works.
    expect((await send(agent, `${h.base}/after`)).status).toBe(200);
  });

  it('trusts a new client CA after the bundle rotates, and stops trusting the old one if removed', async () => {
    const ca2 = await createDevCa('Second CA');
    const pem2 = await ca2.issue({ commonName: 'c2', spiffeId: 'spiffe://test.local/ns/new/sa/c', usage: 'client' });
    const tryConnect = () =>
      new Promise<boolean>((resolve) => {
        const s = connect({ host: '127.0.0.1', port: h.sidecar.tlsPort, ca: h.pki.ca.cert, cert: pem2.cert, key: pem2.key, servername: 'localhost' });
        s.on('secureConnect', () => {
          // TLS 1.3 reports a client-certificate rejection after the handshake: wait for data or close.
          s.write('GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
        });
        let data = '';
        s.on('data', (d: Buffer) => (data += d.toString()));
        s.on('close', () => resolve(data.startsWith('HTTP/1.1 200')));
        s.on('error', () => resolve(false));
      });
    expect(await tryConnect()).toBe(false);
    writeFileSync(h.settings.tlsCa, h.pki.ca.cert + ca2.cert);
    const end = Date.now() + 15_000;
    let ok = false;
    while (!ok && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 100));
      ok = await tryConnect();
    }
    expect(ok).toBe(true);
  });

  it('refuses a broken set (key does not match the certificate) and keeps serving', async () => {
    const clientPem = await h.pki.client('spiffe://test.local/ns/a/sa/b');
    const serial = await serverCertSerial(h, clientPem, h.pki.ca.cert);
    const other = await h.pki.ca.issue({ commonName: 'x', usage: 'server' });
    writeFileSync(h.settings.tlsKey, other.key); // cert file unchanged: mismatched pair
    await new Promise((r) => setTimeout(r, 600));
    expect(await serverCertSerial(h, clientPem, h.pki.ca.cert)).toBe(serial);
  });
});
