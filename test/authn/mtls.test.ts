import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from 'undici';
import { createDevCa } from '../../src/tls/dev-ca.ts';
import { send, startHarness, until, type Harness } from '../support/harness.ts';
import { policyYaml } from './support/policy.ts';

const GOOD = 'spiffe://test.local/ns/shop/sa/web';

function agentFor(h: Harness, pem: { cert: string; key: string } | null): Agent {
  return new Agent({ connect: { ca: h.pki.ca.cert, ...(pem ? { cert: pem.cert, key: pem.key } : {}), servername: 'localhost', rejectUnauthorized: true } });
}

/** True when the TLS layer refused the client (an alert or a reset during the handshake), not a later error. */
async function handshakeRefused(h: Harness, agent: Agent): Promise<boolean> {
  try {
    await send(agent, `${h.base}/anything`);
    return false;
  } catch (err) {
    const e = err as Error & { code?: string; cause?: { code?: string } };
    const code = e.code ?? e.cause?.code ?? '';
    return /^ERR_SSL_|ECONNRESET|UND_ERR_SOCKET/.test(code);
  } finally {
    await agent.close().catch(() => undefined);
  }
}

describe('mTLS peer authentication', () => {
  describe('with client certificates required (default)', () => {
    let h: Harness;
    const tlsFailures: string[] = [];
    beforeAll(async () => {
      h = await startHarness(
        policyYaml(`
          mtls:
            trustDomains: []
          requirements:
            - { id: strict, paths: [/strict/**], require: mtls }
        `),
        { observers: [{ onTlsHandshakeError: (reason) => tlsFailures.push(reason) }] },
      );
    });
    let seen = 0;
    /** The sidecar saw a failed handshake (the reason wording depends on who closes first under TLS 1.3) and nothing reached the upstream. */
    async function refusedByTls(reason?: string): Promise<void> {
      await until(() => tlsFailures.length > seen);
      if (reason) expect(tlsFailures.slice(seen)).toContain(reason);
      seen = tlsFailures.length;
      expect(h.upstream.requests.some((r) => r.url === '/anything')).toBe(false);
    }
    afterAll(async () => {
      await h?.close();
    });

    it('a valid SPIFFE client gets its SPIFFE ID as identity', async () => {
      const r = await send(await h.client(GOOD), `${h.base}/whoami`);
      expect(r.status).toBe(200);
      expect(h.upstream.requests.at(-1)!.headers['x-palisade-spiffe-id']).toBe(GOOD);
      await until(() => h.decisions.some((d) => d.request.path === '/whoami'));
      expect(h.decisions.find((d) => d.request.path === '/whoami')!.identity).toMatchObject({ subject: GOOD, spiffeId: GOOD, methods: ['mtls'], tokenId: null });
    });

    it('a certificate without a SPIFFE SAN is identified by its subject when no SPIFFE ID is required', async () => {
      const r = await send(await h.client(null), `${h.base}/nospiffe`);
      expect(r.status).toBe(200);
      await until(() => h.decisions.some((d) => d.request.path === '/nospiffe'));
      const id = h.decisions.find((d) => d.request.path === '/nospiffe')!.identity!;
      expect(id.spiffeId).toBeNull();
      expect(id.subject).toContain('CN=client-without-spiffe');
    });

    it('a certificate from another CA is refused at the handshake', async () => {
      const other = await createDevCa('Not The Mesh CA');
      const pem = await other.issue({ commonName: 'intruder', spiffeId: GOOD, usage: 'client' });
      expect(await handshakeRefused(h, agentFor(h, pem))).toBe(true);
      await refusedByTls();
    });

    it('an expired certificate is refused at the handshake', async () => {
      const pem = await h.pki.client(GOOD, { notBefore: new Date(Date.now() - 10 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) });
      expect(await handshakeRefused(h, agentFor(h, pem))).toBe(true);
      await refusedByTls();
    });

    it('no client certificate is refused at the handshake (PALISADE_REQUIRE_CLIENT_CERT=true)', async () => {
      expect(await handshakeRefused(h, agentFor(h, null))).toBe(true);
      await refusedByTls('no_client_cert');
    });
  });

  describe('with trust domains and SPIFFE ID patterns', () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(policyYaml(`
        mtls:
          trustDomains: [test.local]
          spiffeIds: ["spiffe://test.local/ns/shop/*", "spiffe://test.local/ns/ops/sa/admin"]
      `));
    });
    afterAll(async () => {
      await h?.close();
    });

    it('accepts IDs under an allowed prefix or listed exactly', async () => {
      expect((await send(await h.client(GOOD), `${h.base}/x`)).status).toBe(200);
      expect((await send(await h.client('spiffe://test.local/ns/ops/sa/admin'), `${h.base}/x`)).status).toBe(200);
    });

    it('refuses another trust domain, an ID outside the patterns, and a certificate without a SPIFFE ID (403 AUTHN_PEER_NOT_ALLOWED)', async () => {
      for (const id of ['spiffe://evil.local/ns/shop/sa/web', 'spiffe://test.local/ns/ops/sa/intern', null]) {
        const r = await send(await h.client(id), `${h.base}/x`);
        expect([r.status, r.json?.['code']], String(id)).toEqual([403, 'AUTHN_PEER_NOT_ALLOWED']);
        expect(r.headers['www-authenticate']).toBeUndefined();
      }
    });
  });

  describe('with client certificates optional (PALISADE_REQUIRE_CLIENT_CERT=false)', () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(
        policyYaml(`
          mtls:
            requireSpiffeId: true
          jwt:
            issuers: [{ issuer: "https://idp.test/", jwksUri: "http://127.0.0.1:9/jwks", audiences: [api] }]
          requirements:
            - { id: public, paths: [/public/**], require: none }
            - { id: both, paths: [/both/**], require: { allOf: [mtls, jwt] } }
        `),
        { env: { PALISADE_REQUIRE_CLIENT_CERT: 'false' } },
      );
    });
    afterAll(async () => {
      await h?.close();
    });

    it('a client without a certificate gets 401 AUTHN_PEER_REQUIRED where mTLS is required, and in on a public route', async () => {
      const anon = h.anonymous();
      const r = await send(anon, `${h.base}/private`);
      expect([r.status, r.json?.['code']]).toEqual([401, 'AUTHN_PEER_REQUIRED']);
      const both = await send(anon, `${h.base}/both/x`, { headers: { authorization: 'Bearer abc' } });
      expect([both.status, both.json?.['code']]).toEqual([401, 'AUTHN_PEER_REQUIRED']);
      expect(both.headers['www-authenticate']).toBe('Bearer realm="palisade"');
      const pub = await send(anon, `${h.base}/public/x`);
      expect(pub.status).toBe(200);
      await until(() => h.decisions.some((d) => d.request.path === '/public/x'));
      expect(h.decisions.find((d) => d.request.path === '/public/x')!.identity).toBeNull();
    });

    it('a certificate from another CA is refused even when certificates are optional (presented and invalid: fail closed)', async () => {
      const other = await createDevCa('Not The Mesh CA');
      const pem = await other.issue({ commonName: 'intruder', spiffeId: GOOD, usage: 'client' });
      const agent = agentFor(h, pem);
      const before = h.upstream.requests.length;
      try {
        await expect(send(agent, `${h.base}/private`)).rejects.toThrow();
        expect(h.upstream.requests.length).toBe(before);
      } finally {
        await agent.close();
      }
    });

    it('requireSpiffeId refuses a certificate without a SPIFFE ID', async () => {
      const r = await send(await h.client(null), `${h.base}/private`);
      expect([r.status, r.json?.['code']]).toEqual([403, 'AUTHN_PEER_NOT_ALLOWED']);
    });
  });
});
