/** Refused TLS peers are counted by reason (a bounded metric label), and never reach HTTP. */
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevCa, type Pem } from '../../src/tls/dev-ca.ts';
import { startHarness, until, type Harness } from '../support/harness.ts';

const POLICY = `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: tls-reasons }
spec:
  authorization:
    rules: [{ id: all, paths: ["/**"], public: true }]
`;

describe('TLS handshake failure reasons', () => {
  let h: Harness;
  const reasons: string[] = [];
  beforeAll(async () => {
    h = await startHarness(POLICY, { observers: [{ onTlsHandshakeError: (r) => reasons.push(r) }] });
  });
  afterAll(async () => {
    await h?.close();
  });

  const attempt = (pem: Pem | null) =>
    new Promise<string>((resolve) => {
      const s = connect({ host: '127.0.0.1', port: h.sidecar.tlsPort, ca: h.pki.ca.cert, servername: 'localhost', ...(pem ? { cert: pem.cert, key: pem.key } : {}) }, () => {
        s.write('GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
      });
      let data = '';
      s.on('data', (d: Buffer) => (data += d.toString()));
      s.on('error', () => resolve(data));
      s.on('close', () => resolve(data));
    });

  it.each([
    ['a foreign CA', 'unknown_ca', async () => (await createDevCa('Rogue')).issue({ commonName: 'r', spiffeId: 'spiffe://test.local/x', usage: 'client' })],
    ['an expired certificate', 'cert_expired', async () => h.pki.client('spiffe://test.local/old', { notBefore: new Date(Date.now() - 2e9), notAfter: new Date(Date.now() - 1e9) })],
    ['no certificate', 'no_client_cert', async () => null],
  ])('%s is refused and counted as %s', async (_name, reason, make) => {
    const before = h.upstream.requests.length;
    const decisions = h.decisions.length;
    const data = await attempt(await make());
    expect(data).not.toMatch(/HTTP\/1\.1/);
    await until(() => reasons.includes(reason));
    expect(h.upstream.requests.length).toBe(before);
    expect(h.decisions.length).toBe(decisions); // not a request: no decision
  });
});
