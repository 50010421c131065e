/**
 * The replay behind `policy diff`, on what a real sidecar recorded for
 * requests refused at the block list and at authentication: through the
 * policy that made them they come out as recorded; through a changed policy
 * they follow its mTLS rules, requirements and entries.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockListStore } from '../../src/blocklist/store.ts';
import { decodeDecision, encodeDecision } from '../../src/decision/encode.ts';
import type { DecisionRecord } from '../../src/decision/record.ts';
import { createLogger } from '../../src/log/logger.ts';
import type { CompiledPolicy } from '../../src/policy/compiled.ts';
import { compilePolicy, parsePolicyText, validatePolicy } from '../../src/policy/load.ts';
import { createReplayer } from '../../src/policy/replay.ts';
import { createServices } from '../../src/sidecar/compose.ts';
import { send, startHarness, until, type Harness } from '../support/harness.ts';
import { startJwksServer, type JwksServer } from '../authn/support/jwks-server.ts';
import { makeKey, signToken } from '../authn/support/keys.ts';

const WEB = 'spiffe://test.local/ns/shop/sa/web';
const BATCH = 'spiffe://test.local/ns/shop/sa/batch';
const EVIL = 'spiffe://evil.local/ns/shop/sa/web';

const policy = (o: { domains?: string; ordersRequire?: string; block?: boolean } = {}) => `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: replay, version: "1" }
spec:
  authentication:
    mtls: { trustDomains: [${o.domains ?? 'test.local'}] }
    requirements:
      - { id: health, paths: [/healthz], require: none }
${o.ordersRequire ? `      - { id: orders-open, paths: ["/orders/**"], require: ${o.ordersRequire} }\n` : ''}    defaultRequire: mtls
  blocklist:
    entries:
${o.block === false ? '      []' : `      - { id: bad-batch, spiffeId: "${BATCH}", reason: runaway job }`}
  authorization:
    rules:
      - { id: health, methods: [GET], paths: [/healthz], public: true }
      - { id: orders-read, methods: [GET], paths: ["/orders/**"], authenticated: true }
`;

async function compile(yaml: string): Promise<CompiledPolicy> {
  const { document, hash } = validatePolicy(parsePolicyText(yaml, 'p'), 'p');
  return compilePolicy(document, hash, '/tmp', createServices(createLogger({ level: 'silent' })));
}

const show = (o: { verdict: string; code: string | null; stage: string | null; rule: string | null }) => `${o.verdict} ${o.code ?? '-'} ${o.stage ?? '-'} ${o.rule ?? '-'}`;

describe('policy diff replay: block list and authentication', () => {
  let h: Harness;
  let recording: DecisionRecord[];
  beforeAll(async () => {
    h = await startHarness(policy(), { env: { PALISADE_REQUIRE_CLIENT_CERT: 'false' } });
    const anon = h.anonymous();
    await send(anon, `${h.base}/orders/1`);
    await send(anon, `${h.base}/healthz`);
    await send(await h.client(EVIL), `${h.base}/orders/1`);
    await send(await h.client(BATCH), `${h.base}/orders/1`);
    const web = await h.client(WEB);
    await send(web, `${h.base}/orders/1`);
    await send(web, `${h.base}/nothing`);
    // A block from the run-time list (as the detector or an operator adds it): no policy holds it.
    const ops = 'spiffe://test.local/ns/ops/sa/oncall';
    blockListStore(h.services).add({ kind: 'spiffeId', value: ops, reason: 'SOC ticket 4711', source: 'manual', rule: 'manual:ticket-4711' });
    await send(await h.client(ops), `${h.base}/orders/1`);
    await until(() => h.decisions.length === 7);
    recording = h.decisions.map((r) => decodeDecision(JSON.parse(JSON.stringify(encodeDecision(r)))));
  });
  afterAll(async () => {
    await h?.close();
  });

  const replayAll = (p: CompiledPolicy, recordedUnder: CompiledPolicy) => {
    const r = createReplayer(p, recordedUnder);
    return recording.map((d) => `${d.request.path} ${show(r.replay(d))}`);
  };

  it('through the policy that made them, the decisions come out as recorded', async () => {
    const p = await compile(policy());
    const recorded = recording.map((d) => `${d.request.path} ${show({ verdict: d.verdict, code: d.verdict === 'allow' ? null : d.code, stage: d.verdict === 'allow' ? null : d.decidedBy, rule: d.rule })}`);
    expect(recorded).toEqual([
      '/orders/1 deny AUTHN_PEER_REQUIRED authn -',
      '/healthz allow - - health',
      '/orders/1 deny AUTHN_PEER_NOT_ALLOWED authn -',
      '/orders/1 deny BLOCKED blocklist bad-batch',
      '/orders/1 allow - - orders-read',
      '/nothing deny AUTHZ_NO_MATCHING_RULE authz -',
      '/orders/1 deny BLOCKED blocklist manual:ticket-4711',
    ]);
    expect(replayAll(p, p)).toEqual(recorded);
  });

  it('follows a changed policy: trust domains, requirements and block entries', async () => {
    const old = await compile(policy());
    const next = await compile(policy({ domains: 'test.local, evil.local', ordersRequire: 'none', block: false }));
    expect(replayAll(next, old)).toEqual([
      // No credential needed any more; authorization still wants an authenticated identity.
      '/orders/1 deny AUTHZ_NO_MATCHING_RULE authz orders-read',
      '/healthz allow - - health',
      // The peer's trust domain is accepted now, and the route needs nothing: the peer still reaches authorization.
      '/orders/1 allow - - orders-read',
      '/orders/1 allow - - orders-read',
      '/orders/1 allow - - orders-read',
      '/nothing deny AUTHZ_NO_MATCHING_RULE authz -',
      // The run-time block stands whatever the policy says.
      '/orders/1 deny BLOCKED blocklist manual:ticket-4711',
    ]);
  });
});

describe('policy diff replay: tokens (never recorded)', () => {
  const ISS = 'https://idp.test/';
  const jwtPolicy = (o: { tenantsRequire?: string; tenantRule?: string } = {}) => `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: replay-jwt, version: "1" }
spec:
  authentication:
    jwt:
      issuers: [{ issuer: "${ISS}", jwksUri: "JWKS", audiences: [orders] }]
    requirements:
      - { id: tenants, paths: ["/tenants/**"], require: ${o.tenantsRequire ?? 'jwt'} }
    defaultRequire: mtls
  authorization:
    rules:
      - id: own-tenant
        methods: [GET]
        paths: ["/tenants/{tenantId}/orders"]
        authenticated: true
        when: [{ claim: ${o.tenantRule ?? 'tenant'}, equalsParam: tenantId }]
`;
  let h: Harness;
  let jwks: JwksServer;
  let recording: DecisionRecord[];
  let withUrl: (yaml: string) => string;
  beforeAll(async () => {
    const key = await makeKey('ES256');
    jwks = await startJwksServer([key.jwk]);
    withUrl = (yaml) => yaml.replace('JWKS', jwks.url);
    h = await startHarness(withUrl(jwtPolicy()), { env: { PALISADE_REQUIRE_CLIENT_CERT: 'false' } });
    const anon = h.anonymous();
    const token = (claims: Record<string, unknown>, expiresIn = 300) => signToken(key, { iss: ISS, aud: 'orders', sub: 'alice', ...claims }, { expiresIn });
    await send(anon, `${h.base}/tenants/acme/orders`, { headers: { authorization: `Bearer ${await token({ tenant: 'acme', org: 'globex' })}` } });
    await send(anon, `${h.base}/tenants/acme/orders`, { headers: { authorization: `Bearer ${await token({ tenant: 'acme' }, -600)}` } });
    await send(anon, `${h.base}/tenants/acme/orders`);
    await until(() => h.decisions.length === 3);
    recording = h.decisions.map((r) => decodeDecision(JSON.parse(JSON.stringify(encodeDecision(r)))));
  });
  afterAll(async () => {
    await h?.close();
    await jwks?.close();
  });

  const replayAll = (p: CompiledPolicy, recordedUnder: CompiledPolicy) => {
    const r = createReplayer(p, recordedUnder);
    return recording.map((d) => {
      const o = r.replay(d);
      return `${show(o)}${o.notes.length ? ' *' : ''}`;
    });
  };

  it('through the policy that made them, a verified token, an expired one and none come out as recorded', async () => {
    const p = await compile(withUrl(jwtPolicy()));
    expect(recording.map((d) => `${d.verdict} ${d.code}`)).toEqual([expect.stringMatching(/^allow /), 'deny AUTHN_TOKEN_EXPIRED', 'deny AUTHN_REQUIRED']);
    expect(replayAll(p, p)).toEqual([
      'allow - - own-tenant',
      // The recorded refusal is kept, and said so.
      'deny AUTHN_TOKEN_EXPIRED authn tenants *',
      'deny AUTHN_REQUIRED authn tenants *',
    ]);
  });

  it("replays authorization on the recorded token's claims, and a route that stops reading tokens", async () => {
    const old = await compile(withUrl(jwtPolicy()));
    // The condition now reads another claim: the recorded claims answer (org = globex, not acme).
    expect(replayAll(await compile(withUrl(jwtPolicy({ tenantRule: 'org' }))), old)[0]).toBe('deny AUTHZ_CONDITION_FAILED authz own-tenant');
    // The route asks for no token any more: none is read, so no claims reach authorization (as in the sidecar).
    expect(replayAll(await compile(withUrl(jwtPolicy({ tenantsRequire: 'none' }))), old)).toEqual([
      'deny AUTHZ_NO_MATCHING_RULE authz own-tenant',
      'deny AUTHZ_NO_MATCHING_RULE authz own-tenant',
      'deny AUTHZ_NO_MATCHING_RULE authz own-tenant',
    ]);
  });
});

