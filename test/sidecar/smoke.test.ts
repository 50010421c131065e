import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startHarness, until, type Harness } from '../support/harness.ts';

const POLICY = `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: smoke, version: "1" }
spec:
  authorization:
    rules:
      - id: health
        methods: [GET]
        paths: [/healthz]
        public: true
`;

describe('sidecar smoke', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness(POLICY);
  });
  afterAll(async () => {
    await h?.close();
  });

  it('forwards an allowed request over mTLS and denies the rest with problem+json', async () => {
    const a = await h.client('spiffe://test.local/ns/a/sa/b');
    const ok = await send(a, `${h.base}/healthz`);
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ ok: true, url: '/healthz' });
    const no = await send(a, `${h.base}/admin`);
    expect(no.status).toBe(403);
    expect(String(no.headers['content-type'])).toMatch(/^application\/problem\+json/);
    expect(no.json).toMatchObject({ code: 'AUTHZ_NO_MATCHING_RULE', status: 403 });
    expect(typeof no.json?.['request_id']).toBe('string');
    await until(() => h.decisions.length >= 2);
    expect(h.decisions.map((d) => [d.verdict, d.code, d.request.path])).toEqual([
      ['allow', 'ALLOWED', '/healthz'],
      ['deny', 'AUTHZ_NO_MATCHING_RULE', '/admin'],
    ]);
  });
});
