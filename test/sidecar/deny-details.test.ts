/**
 * Every deny path against a real sidecar: the client gets the stable code, the
 * generic title and the request id (and, where it helps a legitimate caller, a
 * fixed sentence), never the reason, a threshold, a limit, a rule id or a
 * ticket; the decision event has the reason. The rule is in docs/codes.md
 * ("What the client is told").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from 'undici';
import { blockListStore } from '../../src/blocklist/store.ts';
import { CODES, type Code } from '../../src/errors/codes.ts';
import type { DecisionRecord } from '../../src/decision/record.ts';
import { createLogger } from '../../src/log/logger.ts';
import { createServices } from '../../src/sidecar/compose.ts';
import { startIntrospectionServer, type IntrospectionServer } from '../authn/support/introspection-server.ts';
import { startJwksServer, type JwksServer } from '../authn/support/jwks-server.ts';
import { makeKey, signToken, type TestKey } from '../authn/support/keys.ts';
import { send, startHarness, until, type Harness } from '../support/harness.ts';

const ISS = 'https://idp.test/';
const AUD = 'orders-api';
const PEER = 'spiffe://test.local/ns/shop/sa/web';
const COMPROMISED = 'spiffe://test.local/ns/shop/sa/compromised';
const FLOODER = 'spiffe://test.local/ns/shop/sa/flooder';
const STRANGER = 'spiffe://elsewhere.example/ns/x/sa/y';
const TICKET = 'internal: SOC ticket 4711 suspected compromise';
const DETECTION = "45 requests/s over the last 1 s against this client's usual 3 ± 1.41 requests/s (threshold 30)";

const DEAD_ISS = 'https://dead.test/';
const SECRET_ENV = 'PALISADE_TEST_DENY_DETAILS_INTROSPECTION_SECRET';

const policy = (jwksUri: string, introspectionUrl: string) => `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: deny-details, version: "1" }
spec:
  blocklist:
    entries:
      - id: soc-ticket-4711
        spiffeId: ${COMPROMISED}
        reason: "${TICKET}"
  authentication:
    mtls:
      trustDomains: [test.local]
    jwt:
      issuers:
        - { issuer: "${ISS}", jwksUri: "${jwksUri}", audiences: [${AUD}] }
        - { issuer: "${DEAD_ISS}", jwksUri: "http://127.0.0.1:9/jwks", audiences: [${AUD}], jwks: { timeoutMs: 500 } }
    introspection:
      endpoint: ${introspectionUrl}
      clientId: palisade
      clientSecret: { env: ${SECRET_ENV} }
      timeoutMs: 5000
    requirements:
      - { id: token-routes-requirement, paths: [/jwt/**], require: jwt }
      - { id: opaque-routes-requirement, paths: [/opaque/**], require: introspection }
    defaultRequire: mtls
  rateLimits:
    rules:
      - id: quiet-quota-per-client
        key: [identity]
        rate: 1
        per: hour
        burst: 1
        paths: [/limited/**]
  authorization:
    rules:
      - id: open-to-workloads
        paths: [/open/**, /limited/**, /jwt/**, /big/**, /opaque/**]
        authenticated: true
  limits:
    maxUrlLength: 300
    maxHeaderCount: 40
    maxBodyBytes: 1234
`;

/** problem+json members a client may see; anything else would be something of ours. */
const CLIENT_MEMBERS = new Set(['type', 'title', 'status', 'code', 'request_id', 'detail', 'errors']);

describe('what a refused client is told, on every deny path', () => {
  let h: Harness;
  let jwks: JwksServer;
  let intro: IntrospectionServer;
  let key: TestKey;
  let client: Agent;

  beforeAll(async () => {
    key = await makeKey('ES256');
    jwks = await startJwksServer([key.jwk]);
    intro = await startIntrospectionServer();
    process.env[SECRET_ENV] = intro.clientSecret;
    h = await startHarness(policy(jwks.url, intro.url), { services: createServices(createLogger({ level: 'silent' })) });
    client = await h.client(PEER);
  });
  afterAll(async () => {
    await h?.close();
    await jwks?.close();
    await intro?.close();
    delete process.env[SECRET_ENV];
  });

  type Reply = Awaited<ReturnType<typeof send>>;
  /** The body without its (random) request id, for checks that a number does not appear. */
  const shown = (r: Reply) => JSON.stringify({ ...r.json, request_id: '' });

  /**
   * Checks one refusal: the body is code, title, status, request id (and an
   * allowed fixed detail); the decision event of that request holds the reason,
   * and the body holds neither the reason nor the deciding rule's id.
   */
  async function refused(r: Reply, code: Code, clientDetail: string | null = null, hasReason = true): Promise<DecisionRecord> {
    expect(r.status).toBe(CODES[code].status);
    expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
    const body = r.json as Record<string, unknown>;
    expect(body).toMatchObject({ type: `urn:palisade:problem:${code}`, title: CODES[code].title, status: CODES[code].status, code, request_id: expect.any(String) });
    for (const k of Object.keys(body)) expect(CLIENT_MEMBERS.has(k), `unexpected member ${k}`).toBe(true);
    if (clientDetail === null) expect(body).not.toHaveProperty('detail');
    else expect(body['detail']).toBe(clientDetail);
    const id = body['request_id'];
    await until(() => h.decisions.some((d) => d.requestId === id));
    const d = h.decisions.find((x) => x.requestId === id) as DecisionRecord;
    expect(d.code).toBe(code);
    if (hasReason) {
      expect(d.detail, 'the reason is on the decision event').toBeTruthy();
      expect(d.detail).not.toBe(clientDetail);
      expect(r.text).not.toContain(d.detail as string);
    }
    if (d.rule !== null) expect(r.text).not.toContain(d.rule);
    return d;
  }

  it('a manual (policy) block: no ticket, no reason, only BLOCKED', async () => {
    const r = await send(await h.client(COMPROMISED), `${h.base}/open/x`);
    const d = await refused(r, 'BLOCKED');
    expect(d).toMatchObject({ decidedBy: 'blocklist', rule: 'soc-ticket-4711', detail: TICKET });
    expect(shown(r)).not.toContain('4711');
  });

  it("a detector's run-time block: no detection, baseline or threshold", async () => {
    const store = blockListStore(h.services);
    store.add({ kind: 'spiffeId', value: FLOODER, reason: DETECTION, source: 'detector', rule: 'detector:rate.burst' });
    try {
      const r = await send(await h.client(FLOODER), `${h.base}/open/x`);
      const d = await refused(r, 'BLOCKED');
      expect(d.detail).toBe(DETECTION);
      for (const leak of ['threshold', '30', '1.41', 'requests/s']) expect(shown(r)).not.toContain(leak);
    } finally {
      store.remove('spiffeId', FLOODER);
    }
  });

  it('authentication: code and title only, whatever check failed; the reason is on the event', async () => {
    const get = (headers: Record<string, string>) => send(client, `${h.base}/jwt/orders`, { headers });
    const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
    const claims = { iss: ISS, aud: AUD, sub: 'alice' };
    const other = await makeKey('ES256', key.kid);
    const unknownKid = await makeKey('ES256');
    const cases: [Record<string, string>, Code, RegExp][] = [
      [{}, 'AUTHN_REQUIRED', /credential/],
      [{ authorization: 'Bearer ' }, 'AUTHN_TOKEN_MALFORMED', /without a token/],
      [bearer('not.a-jwt.at-all'), 'AUTHN_TOKEN_MALFORMED', /well-formed/],
      [bearer(await signToken(key, { ...claims, iss: 'https://evil.test/' })), 'AUTHN_ISSUER_UNKNOWN', /issuer is not trusted/],
      [bearer(await signToken(unknownKid, claims)), 'AUTHN_KEY_UNKNOWN', /kid/],
      [bearer(await signToken(other, claims)), 'AUTHN_TOKEN_INVALID', /signature|verified/],
      [bearer(await signToken(key, claims, { now: Date.now() - 3_600_000, expiresIn: 60 })), 'AUTHN_TOKEN_EXPIRED', /expired/],
      [bearer(await signToken(key, { ...claims, aud: 'billing-api' })), 'AUTHN_AUDIENCE_MISMATCH', /aud/],
      // The issuer's key set cannot be fetched: a 503 that does not say which issuer, nor why.
      [bearer(await signToken(key, { ...claims, iss: DEAD_ISS })), 'AUTHN_JWKS_UNAVAILABLE', /key set could not be fetched/],
    ];
    for (const [headers, code, reason] of cases) {
      const r = await get(headers);
      const d = await refused(r, code);
      expect(d).toMatchObject({ decidedBy: 'authn', rule: 'token-routes-requirement' });
      expect(d.detail).toMatch(reason);
      // The RFC 6750 challenge (on a 401) says no more than the title.
      if (CODES[code].status !== 401) {
        expect(r.headers['www-authenticate']).toBeUndefined();
        continue;
      }
      const challenge = String(r.headers['www-authenticate']);
      expect(challenge).toMatch(/^Bearer realm=/);
      expect(challenge).not.toContain(d.detail as string);
      if (code !== 'AUTHN_REQUIRED') expect(challenge).toContain(`error_description="${CODES[code].title}"`);
    }
  });

  it('introspection: an inactive token and an outage, code and title only', async () => {
    const get = () => send(client, `${h.base}/opaque/orders`, { headers: { authorization: 'Bearer opaque-token-1' } });
    const inactive = await refused(await get(), 'AUTHN_TOKEN_INACTIVE');
    expect(inactive).toMatchObject({ rule: 'opaque-routes-requirement', detail: 'the token is not active' });
    intro.mode = 'error';
    try {
      const down = await send(client, `${h.base}/opaque/orders`, { headers: { authorization: 'Bearer opaque-token-2' } });
      const d = await refused(down, 'AUTHN_INTROSPECTION_UNAVAILABLE');
      expect(d.detail).toBe('the token could not be checked');
    } finally {
      intro.mode = 'ok';
    }
  });

  it('an mTLS peer outside the accepted trust domains: no trust domain named', async () => {
    const r = await send(await h.client(STRANGER), `${h.base}/open/x`);
    const d = await refused(r, 'AUTHN_PEER_NOT_ALLOWED');
    expect(d.detail).toMatch(/trust domain/);
    expect(shown(r)).not.toContain('test.local');
  });

  it('authorization: no rule id, no detail (the code is the reason: no allow rule matched)', async () => {
    const r = await send(client, `${h.base}/closed/x`);
    const d = await refused(r, 'AUTHZ_NO_MATCHING_RULE', null, false);
    expect(d.decidedBy).toBe('authz');
  });

  it("a rate limit: the standard headers and a fixed sentence, not the limit's id", async () => {
    expect((await send(client, `${h.base}/limited/a`)).status).toBe(200);
    const r = await send(client, `${h.base}/limited/a`);
    const d = await refused(r, 'RATE_LIMITED', 'retry after the number of seconds in Retry-After');
    expect(d).toMatchObject({ rule: 'quiet-quota-per-client', detail: expect.stringMatching(/^rate limit "quiet-quota-per-client" exceeded; retry after \d+ s$/) });
    expect(Number(r.headers['retry-after'])).toBeGreaterThan(0);
    expect(r.headers['ratelimit']).toBeDefined();
  });

  it('limits: which limit, never its number', async () => {
    const big = await send(client, `${h.base}/big/x`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'x'.repeat(2000) });
    const d1 = await refused(big, 'BODY_TOO_LARGE', 'the request body is larger than this route accepts');
    expect(d1.detail).toBe('request body exceeds 1234 bytes');
    expect(shown(big)).not.toContain('1234');
    const long = await send(client, `${h.base}/open/${'a'.repeat(400)}`);
    const d2 = await refused(long, 'URL_TOO_LONG', 'the request target is longer than this service accepts');
    expect(d2.detail).toMatch(/the limit is 300$/);
    expect(shown(long)).not.toContain('300');
    const many = await send(client, `${h.base}/open/x`, { headers: Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`x-h${i}`, '1'])) });
    const d3 = await refused(many, 'HEADERS_TOO_LARGE', 'the request has more header fields or header bytes than this service accepts');
    expect(d3.detail).toMatch(/the limit is 40$/);
    expect(shown(many)).not.toContain('40');
  });

  it('an upstream failure: the code only, the cause on the event (last: it stops the upstream)', async () => {
    await h.upstream.close();
    const r = await send(client, `${h.base}/open/x`);
    const d = await refused(r, 'UPSTREAM_UNREACHABLE');
    expect(d).toMatchObject({ decidedBy: 'upstream', detail: 'upstream: ECONNREFUSED' });
  });
});
