import { describe, expect, it } from 'vitest';
import { downstreamHeaders } from '../../src/sidecar/forward-headers.ts';

describe('downstreamHeaders (upstream response -> client)', () => {
  it('drops the hop-by-hop headers Node sends by default, keeps the rest in order', () => {
    const out = downstreamHeaders({ 'content-type': 'application/json', 'content-length': '12', date: 'Fri, 04 Dec 2026 13:00:00 GMT', connection: 'keep-alive', 'keep-alive': 'timeout=65' });
    expect(out).toEqual({ 'content-type': 'application/json', 'content-length': '12', date: 'Fri, 04 Dec 2026 13:00:00 GMT' });
    expect(Object.keys(out)).toEqual(['content-type', 'content-length', 'date']);
  });

  it('drops every RFC 9110 hop-by-hop header except transfer-encoding, which frames the body', () => {
    const out = downstreamHeaders({ 'proxy-connection': 'x', 'proxy-authenticate': 'Basic', 'proxy-authorization': 'Basic eA==', te: 'trailers', trailer: 'x-sum', upgrade: 'h2c', 'transfer-encoding': 'chunked', etag: '"1"' });
    expect(out).toEqual({ 'transfer-encoding': 'chunked', etag: '"1"' });
  });

  it('drops the headers the upstream names in its Connection header, whatever their case and spacing', () => {
    const out = downstreamHeaders({ connection: 'Keep-Alive, X-Upstream-Private ,x-other', 'x-upstream-private': 'secret', 'x-other': '1', 'x-kept': '2' });
    expect(out).toEqual({ 'x-kept': '2' });
    expect(downstreamHeaders({ connection: 'close', 'x-kept': '2' })).toEqual({ 'x-kept': '2' });
    expect(downstreamHeaders({ connection: 'X-Single', 'x-single': '1', 'x-kept': '2' })).toEqual({ 'x-kept': '2' });
  });

  it('keeps multi-valued headers as they are', () => {
    expect(downstreamHeaders({ 'set-cookie': ['a=1', 'b=2'] })).toEqual({ 'set-cookie': ['a=1', 'b=2'] });
  });
});
