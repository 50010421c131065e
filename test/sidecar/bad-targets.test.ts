/**
 * Request targets the router or the upstream client could not read: the path is refused with
 * problem+json, a request id and one decision (fastify answered a path it could not decode in
 * its own JSON, with no decision); the query, which the sidecar does not judge, reaches the
 * service as it came (reply-from decoded it and failed with a 500, or refused `..` in it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLog } from '../support/log-capture.ts';
import { rawRequest, startHarness, until, type Harness } from '../support/harness.ts';

const POLICY = `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: targets, version: "1" }
spec:
  authorization:
    rules:
      - id: open
        paths: ["/open/**"]
        public: true
`;

describe('request targets the router or the upstream client cannot decode', () => {
  let h: Harness;
  const log = captureLog('debug');
  beforeAll(async () => {
    h = await startHarness(POLICY, { logger: log.logger });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('refuses a path with malformed percent-encoding with problem+json, a request id and one decision', async () => {
    for (const target of ['/open/%zz', '/open/a%', '/open/%E0%A4%A']) {
      const r = await rawRequest(h, target);
      expect(r.status).toBe(400);
      expect(r.raw).toMatch(/\r\ncontent-type: application\/problem\+json/i);
      const id = /\r\nx-request-id: (\w+)\r\n/i.exec(r.raw)?.[1];
      expect(id).toBeDefined();
      expect(JSON.parse(r.body)).toMatchObject({ code: 'PATH_INVALID', request_id: id });
      await until(() => h.decisions.some((d) => d.requestId === id));
      expect(h.decisions.filter((d) => d.requestId === id)).toHaveLength(1);
      expect(h.decisions.find((d) => d.requestId === id)).toMatchObject({ verdict: 'deny', code: 'PATH_INVALID', decidedBy: 'request', response: { status: 400 } });
    }
  });

  it('forwards a query it does not judge as it came, even one a URL decoder refuses', async () => {
    for (const query of ['q=%zz', 'next=..%2Fadmin', 'a=1&b=%E0%A4%A']) {
      const r = await rawRequest(h, `/open/x?${query}`);
      expect(r.status).toBe(200);
      expect(h.upstream.requests.at(-1)?.url).toBe(`/open/x?${query}`);
    }
    expect(log.records().filter((r) => (r['level'] as number) >= 50)).toEqual([]);
  });
});
