import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readsWhole, sendUpstreamBody, WHOLE_RESPONSE_MAX_BYTES } from '../../src/sidecar/upstream-response.ts';

const JSON_TYPE = { 'content-type': 'application/json' };

describe('readsWhole (which upstream answers are read whole)', () => {
  it('reads a body of known, small length; streams unknown or large ones', () => {
    expect(readsWhole('GET', 200, { ...JSON_TYPE, 'content-length': '11' })).toBe(true);
    expect(readsWhole('POST', 500, { ...JSON_TYPE, 'content-length': '0' })).toBe(true);
    expect(readsWhole('GET', 200, { ...JSON_TYPE, 'content-length': String(WHOLE_RESPONSE_MAX_BYTES) })).toBe(true);
    expect(readsWhole('GET', 200, { ...JSON_TYPE, 'content-length': String(WHOLE_RESPONSE_MAX_BYTES + 1) })).toBe(false);
    expect(readsWhole('GET', 200, { ...JSON_TYPE, 'transfer-encoding': 'chunked' })).toBe(false);
    expect(readsWhole('GET', 200, { ...JSON_TYPE, 'content-length': '1e3' })).toBe(false);
    expect(readsWhole('GET', 200, { ...JSON_TYPE, 'content-length': 'abc' })).toBe(false);
    expect(readsWhole('GET', 200, { ...JSON_TYPE, 'content-length': '-1' })).toBe(false);
    expect(readsWhole('GET', 200, { ...JSON_TYPE, 'content-length': ['1', '2'] })).toBe(false);
  });

  it('streams an answer without a Content-Type, which a buffer would get one added to', () => {
    expect(readsWhole('GET', 200, { 'content-length': '11' })).toBe(false);
  });

  it('never reads answers without a body (HEAD, 1xx, 204, 304), so their Content-Length stays', () => {
    expect(readsWhole('HEAD', 200, { ...JSON_TYPE, 'content-length': '5000' })).toBe(false);
    expect(readsWhole('GET', 204, { ...JSON_TYPE, 'content-length': '0' })).toBe(false);
    expect(readsWhole('GET', 304, { ...JSON_TYPE, 'content-length': '10' })).toBe(false);
    expect(readsWhole('GET', 103, { ...JSON_TYPE, 'content-length': '0' })).toBe(false);
  });
});

describe('sendUpstreamBody', () => {
  /** A few rounds of the event loop: a body not all there is looked at again after one, then read whole. */
  const settled = async () => {
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  };
  const sent = () => {
    const out: unknown[] = [];
    return { out, reply: { send: (p: unknown) => out.push(p) } };
  };

  it('sends the stream itself when it has no whole-body reader or is not to be read whole', () => {
    const { out, reply } = sent();
    const plain = Readable.from(['x']);
    sendUpstreamBody(reply, 'GET', 200, { ...JSON_TYPE, 'content-length': '1' }, plain, () => undefined);
    expect(out[0]).toBe(plain);
  });

  it('sends the whole body as one buffer, or reports a failure to read it without sending', async () => {
    const { out, reply } = sent();
    const ok = Object.assign(Readable.from([]), { bytes: async () => new TextEncoder().encode('{"a":1}') });
    sendUpstreamBody(reply, 'GET', 200, { ...JSON_TYPE, 'content-length': '7' }, ok, () => undefined);
    await settled();
    expect(Buffer.isBuffer(out[0])).toBe(true);
    expect(String(out[0])).toBe('{"a":1}');

    const failed: Error[] = [];
    const broken = Object.assign(Readable.from([]), { bytes: async () => Promise.reject(new Error('other side closed')) });
    sendUpstreamBody(reply, 'GET', 200, { ...JSON_TYPE, 'content-length': '7' }, broken, (e) => failed.push(e));
    await settled();
    expect(out).toHaveLength(1);
    expect(failed.map((e) => e.message)).toEqual(['other side closed']);
  });

  /** An upstream body as undici leaves it: the bytes that arrived pushed, and a whole-body reader. */
  const bodyWith = (chunks: string[], bytes: () => Promise<Uint8Array>) => {
    const r = Object.assign(new Readable({ read() {} }), { bytes });
    for (const c of chunks) r.push(c);
    return r;
  };

  it('takes a body that is all there (Content-Length bytes buffered) in one read, without the whole-body reader', async () => {
    const { out, reply } = sent();
    const failed: Error[] = [];
    const body = bodyWith(['{"a":', '1}'], async () => Promise.reject(new Error('the reader was not needed')));
    sendUpstreamBody(reply, 'GET', 200, { ...JSON_TYPE, 'content-length': '7' }, body, (e) => failed.push(e));
    await settled();
    expect(failed).toEqual([]);
    expect(Buffer.isBuffer(out[0])).toBe(true);
    expect(String(out[0])).toBe('{"a":1}');
  });

  it('waits for the rest of a body that is not all there yet', async () => {
    const { out, reply } = sent();
    const body = bodyWith(['{"a":'], async () => new TextEncoder().encode('{"a":1}'));
    sendUpstreamBody(reply, 'GET', 200, { ...JSON_TYPE, 'content-length': '7' }, body, () => undefined);
    await settled();
    expect(String(out[0])).toBe('{"a":1}');
  });
});
