/**
 * JWKS key rotation seen from outside: a real sidecar (mTLS listener, real pipeline) in front of a
 * real upstream, an issuer whose JWKS server answers `Cache-Control: max-age=5`, and the sidecar's
 * clock (services.now) moved by the test. A key published and used right after the sidecar fetched
 * the set is accepted at once; a key the issuer removes is refused once the set's 5 s are over,
 * cached verdicts included; known keys keep working while the issuer is down; a flood of forged
 * kids costs the issuer one fetch.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from 'undici';
import { authnServices } from '../../src/authn/services.ts';
import { createLogger } from '../../src/log/logger.ts';
import { createServices } from '../../src/sidecar/compose.ts';
import { send, startHarness, until, type Harness } from '../support/harness.ts';
import { testClock, type TestClock } from './support/clock.ts';
import { startJwksServer, type JwksServer } from './support/jwks-server.ts';
import { makeKey, signToken, type TestKey } from './support/keys.ts';
import { policyYaml } from './support/policy.ts';

const ISS = 'https://rotating-idp.test/';
const AUD = 'orders-api';
const PEER = 'spiffe://test.local/ns/shop/sa/web';

describe('JWKS rotation through the sidecar (issuer answers max-age=5)', () => {
  let h: Harness;
  let jwks: JwksServer;
  let clock: TestClock;
  let client: Agent;
  let k1: TestKey;
  let k2: TestKey;

  beforeAll(async () => {
    k1 = await makeKey('RS256');
    k2 = await makeKey('ES256');
    jwks = await startJwksServer([k1.jwk]);
    jwks.headers = { 'cache-control': 'public, max-age=5' };
    clock = testClock();
    const authentication = `
      jwt:
        issuers:
          - { issuer: "${ISS}", jwksUri: "${jwks.url}", audiences: [${AUD}], jwks: { timeoutMs: 10000 } }
      requirements:
        - { id: api, paths: [/api/**], require: jwt }
      defaultRequire: mtls
    `;
    h = await startHarness(policyYaml(authentication), { services: createServices(createLogger({ level: 'silent' }), clock.now) });
    client = await h.client(PEER);
  });
  afterAll(async () => {
    await h?.close();
    await jwks?.close();
  });

  const token = (key: TestKey, kid?: string) => signToken(key, { iss: ISS, aud: AUD, sub: `u-${randomUUID().slice(0, 6)}` }, { now: clock.now(), ...(kid ? { kid } : {}) });
  const call = async (t: string) => {
    const r = await send(client, `${h.base}/api/orders`, { headers: { authorization: `Bearer ${t}` } });
    return r.status === 200 ? 'OK' : `${r.status} ${String(r.json?.['code'])}`;
  };

  it('a key published right after the sidecar fetched the set is accepted at once; a removed key is refused once max-age is over', async () => {
    const old = await token(k1);
    expect(await call(old)).toBe('OK');
    expect(jwks.requests).toBe(1);

    // The issuer rotates: publishes k2 and signs with it at once. The sidecar's clock has not moved.
    jwks.keys = [k1.jwk, k2.jwk];
    const fresh = await token(k2);
    expect(await call(fresh)).toBe('OK');
    expect(jwks.requests).toBe(2);

    // Then retires k1. Inside the set's 5 s the cached verdict holds...
    jwks.keys = [k2.jwk];
    clock.advance(4000);
    expect(await call(old)).toBe('OK');
    // ...once they are over, the next request waits for the refetch: k1 is gone, its verdict too.
    clock.advance(1000);
    expect(await call(old)).toBe('401 AUTHN_KEY_UNKNOWN');
    expect(await call(await token(k1))).toBe('401 AUTHN_KEY_UNKNOWN');
    expect(await call(fresh)).toBe('OK');
    await until(() => h.decisions.some((d) => d.code === 'AUTHN_KEY_UNKNOWN' && d.decidedBy === 'authn'));
  });

  it('keeps known keys while the issuer is down, and a flood of forged kids costs it one fetch', async () => {
    const known = await token(k2);
    expect(await call(known)).toBe('OK');
    jwks.mode = 'error';
    clock.advance(6000);
    // Past the set's lifetime with the issuer failing: the known key still verifies.
    expect(await call(known)).toBe('OK');
    expect(await call(await token(k2))).toBe('OK');

    jwks.mode = 'ok';
    clock.advance(60_000);
    const before = jwks.requests;
    expect(await call(await token(k2))).toBe('OK'); // the refetch after the failure (waited for or in the background)
    await authnServices(h.services).jwks.get(`${ISS}\n${jwks.url}`)!.refresh();
    const afterRoutine = jwks.requests;
    expect(afterRoutine - before).toBeLessThanOrEqual(2);
    const forged = await Promise.all(Array.from({ length: 40 }, () => token(k2, `forged-${randomUUID()}`)));
    const codes = await Promise.all(forged.map(call));
    expect(new Set(codes)).toEqual(new Set(['401 AUTHN_KEY_UNKNOWN']));
    expect(jwks.requests - afterRoutine).toBe(1);
  });
});
