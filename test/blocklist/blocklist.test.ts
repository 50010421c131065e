import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockListStore, type BlockChange } from '../../src/blocklist/store.ts';
import { createLogger } from '../../src/log/logger.ts';
import { createServices } from '../../src/sidecar/compose.ts';
import { send, startHarness, until, type Harness } from '../support/harness.ts';

const BAD_PEER = 'spiffe://test.local/ns/bad/sa/scraper';
const GOOD_PEER = 'spiffe://test.local/ns/shop/sa/web';

const POLICY = (extra = '') => `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: blocklist-test, version: "1" }
spec:
  authorization:
    rules:
      - id: open
        paths: [/**]
        public: true
  blocklist:
    entries:
      - id: scraper
        spiffeId: ${BAD_PEER}
        reason: scraping the catalogue
      - cidr: 192.0.2.0/24
        reason: documentation network
${extra}`;

describe('block list', () => {
  let h: Harness;
  let clock = Date.now();
  beforeAll(async () => {
    // A controllable clock: expiry is tested by moving it, never by waiting.
    const services = createServices(createLogger({ level: 'silent' }), () => clock);
    h = await startHarness(POLICY(), { services });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('denies a blocked mTLS peer before anything else and lets others through', async () => {
    const bad = await h.client(BAD_PEER);
    const good = await h.client(GOOD_PEER);
    const denied = await send(bad, `${h.base}/catalogue`);
    expect(denied.status).toBe(403);
    expect(denied.json).toMatchObject({ code: 'BLOCKED', title: 'Client blocked' });
    // The reason is the operators' (the decision event), never the blocked client's.
    expect(denied.json).not.toHaveProperty('detail');
    const ok = await send(good, `${h.base}/catalogue`);
    expect(ok.status).toBe(200);
    await until(() => h.decisions.length >= 2);
    const d = h.decisions.find((r) => r.code === 'BLOCKED');
    expect(d).toMatchObject({ verdict: 'deny', decidedBy: 'blocklist', rule: 'scraper', detail: 'scraping the catalogue' });
    // Nothing after the block list ran.
    expect(d?.stages.map((s) => s.stage)).toEqual(['blocklist']);
    expect(h.upstream.requests.some((r) => r.url === '/catalogue' && r.headers['x-palisade-spiffe-id'] === BAD_PEER)).toBe(false);
  });

  it('blocks a CIDR added at run time, for every client in it, until it is removed', async () => {
    const store = blockListStore(h.services);
    const changes: BlockChange[] = [];
    const off = store.onChange((c) => changes.push(c));
    const a = await h.client(GOOD_PEER);
    store.add({ kind: 'cidr', value: '127.0.0.0/8', reason: 'loopback abuse', source: 'detector', rule: 'detector-burst' });
    const r = await send(a, `${h.base}/x`);
    expect(r.status).toBe(403);
    expect(r.json).toMatchObject({ code: 'BLOCKED' });
    expect(r.text).not.toContain('loopback abuse');
    expect(store.list({ source: 'detector' }).map((e) => e.value)).toEqual(['127.0.0.0/8']);
    expect(store.remove('cidr', '127.0.0.0/8')).toBe(true);
    expect((await send(a, `${h.base}/x`)).status).toBe(200);
    expect(changes.map((c) => c.type)).toEqual(['added', 'removed']);
    off();
    await until(() => h.decisions.some((d) => d.rule === 'detector-burst'));
    expect(h.decisions.find((d) => d.rule === 'detector-burst')).toMatchObject({ decidedBy: 'blocklist', code: 'BLOCKED', client: { ip: '127.0.0.1' } });
  });

  it('an identity let through before is blocked by the next request once its entry is added, and let through once it is removed', async () => {
    const store = blockListStore(h.services);
    const a = await h.client(GOOD_PEER);
    // The same connection, so the same identity object, request after request.
    for (let i = 0; i < 3; i++) expect((await send(a, `${h.base}/ident`)).status).toBe(200);
    store.add({ kind: 'subject', value: GOOD_PEER, reason: 'identity ban', rule: 'ops-ban' });
    const r = await send(a, `${h.base}/ident`);
    expect([r.status, r.json?.['code']]).toEqual([403, 'BLOCKED']);
    expect((await send(a, `${h.base}/ident`)).status).toBe(403);
    // An unrelated change to the list does not lift it.
    store.add({ kind: 'subject', value: 'someone-else', reason: 'other' });
    expect((await send(a, `${h.base}/ident`)).status).toBe(403);
    expect(store.remove('subject', GOOD_PEER)).toBe(true);
    expect((await send(a, `${h.base}/ident`)).status).toBe(200);
    // A block added after the identity was let through again still applies at once.
    store.add({ kind: 'subject', value: GOOD_PEER, reason: 'identity ban again', rule: 'ops-ban-2' });
    expect((await send(a, `${h.base}/ident`)).status).toBe(403);
    store.remove('subject', GOOD_PEER);
    store.remove('subject', 'someone-else');
    await until(() => h.decisions.some((d) => d.rule === 'ops-ban'));
    expect(h.decisions.find((d) => d.rule === 'ops-ban')).toMatchObject({ decidedBy: 'blocklist', code: 'BLOCKED', detail: 'identity ban' });
  });

  it('a peer and an address let through before are blocked by the next request once their entry is added', async () => {
    const store = blockListStore(h.services);
    const a = await h.client(GOOD_PEER);
    for (let i = 0; i < 2; i++) expect((await send(a, `${h.base}/peer`)).status).toBe(200);
    store.add({ kind: 'spiffeId', value: GOOD_PEER, reason: 'peer ban', rule: 'peer-ban' });
    expect((await send(a, `${h.base}/peer`)).status).toBe(403);
    store.remove('spiffeId', GOOD_PEER);
    expect((await send(a, `${h.base}/peer`)).status).toBe(200);
    store.add({ kind: 'ip', value: '127.0.0.1', reason: 'address ban', rule: 'ip-ban' });
    expect((await send(a, `${h.base}/peer`)).status).toBe(403);
    store.remove('ip', '127.0.0.1');
    expect((await send(a, `${h.base}/peer`)).status).toBe(200);
  });

  it('drops an entry when it expires (controllable clock), and tells listeners', async () => {
    const store = blockListStore(h.services);
    const changes: BlockChange[] = [];
    const off = store.onChange((c) => changes.push(c));
    const a = await h.client(GOOD_PEER);
    store.add({ kind: 'ip', value: '::ffff:127.0.0.1', reason: 'cool-down', source: 'detector', ttlMs: 60_000 });
    expect(store.get('ip', '127.0.0.1')?.value).toBe('127.0.0.1');
    expect((await send(a, `${h.base}/y`)).status).toBe(403);
    clock += 59_000;
    expect((await send(a, `${h.base}/y`)).status).toBe(403);
    clock += 1_001;
    expect((await send(a, `${h.base}/y`)).status).toBe(200);
    expect(store.size()).toBe(0);
    expect(changes.map((c) => c.type)).toEqual(['added', 'expired']);
    off();
  });

  it('expires entries by itself on a real timer (polling, no timing assertion)', async () => {
    const store = blockListStore(h.services);
    const expired: BlockChange[] = [];
    const off = store.onChange((c) => c.type === 'expired' && expired.push(c));
    // The clock is frozen, so move it past the expiry and let the timer find it.
    store.add({ kind: 'subject', value: 'alice', reason: 'short ban', ttlMs: 5 });
    clock += 10;
    await until(() => expired.length === 1);
    expect(expired[0]?.entry).toMatchObject({ kind: 'subject', value: 'alice' });
    off();
  });

  it('a dry-run entry records would_deny and lets the request through', async () => {
    const store = blockListStore(h.services);
    store.add({ kind: 'ip', value: '127.0.0.1', reason: 'trial block', rule: 'trial', audit: true });
    const a = await h.client(GOOD_PEER);
    const n = h.decisions.length;
    const r = await send(a, `${h.base}/dry`);
    expect(r.status).toBe(200);
    await until(() => h.decisions.length > n);
    const d = h.decisions.at(-1);
    expect(d).toMatchObject({ verdict: 'allow', code: 'ALLOWED' });
    expect(d?.wouldDeny).toEqual([{ stage: 'blocklist', code: 'BLOCKED', rule: 'trial' }]);
    // An enforced entry for the same client wins over the dry-run one.
    store.add({ kind: 'cidr', value: '127.0.0.0/24', reason: 'real block', rule: 'real' });
    expect((await send(a, `${h.base}/dry`)).json).toMatchObject({ code: 'BLOCKED' });
    await until(() => h.decisions.at(-1)?.request.path === '/dry' && h.decisions.at(-1)?.code === 'BLOCKED');
    expect(h.decisions.at(-1)).toMatchObject({ rule: 'real', detail: 'real block' });
    store.clear();
  });

  it('refuses a policy with a bad entry, naming the field, the value and the fix', async () => {
    h.writePolicy(POLICY(`      - cidr: 10.0.0.1/8\n        reason: typo`));
    const err = await h.sidecar.reloadPolicy();
    expect(err?.message).toMatch(/spec\.blocklist\.entries\[2\]\.cidr: "10\.0\.0\.1\/8" has host bits set; did you mean 10\.0\.0\.0\/8\?/);
    h.writePolicy(POLICY(`      - ip: 10.0.0.1\n        subject: bob\n        reason: two keys`));
    expect((await h.sidecar.reloadPolicy())?.message).toMatch(/entries\[2\]: give exactly one of ip, cidr, subject, spiffeId, clientId, tokenId \(found ip and subject\)/);
  });
});
