/**
 * One outbound HTTP call for the authn stage (JWKS, introspection): a hard
 * timeout covering connect, headers and body, a body size cap (a hostile or
 * broken server cannot make the sidecar buffer megabytes), and no redirects
 * (a redirect could send the client secret elsewhere, or swap the key set).
 */

export interface BoundedResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: Buffer;
}

export class FetchError extends Error {
  /** Short stable reason for logs: timeout, too_large, network, redirect. */
  readonly reason: string;
  constructor(reason: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FetchError';
    this.reason = reason;
  }
}

export async function fetchBounded(
  url: string,
  init: { method?: 'GET' | 'POST'; headers?: Record<string, string>; body?: string; timeoutMs: number; maxBytes: number },
): Promise<BoundedResponse> {
  const signal = AbortSignal.timeout(init.timeoutMs);
  let res: Response;
  try {
    res = await fetch(url, {
      method: init.method ?? 'GET',
      headers: init.headers ?? {},
      ...(init.body !== undefined ? { body: init.body } : {}),
      redirect: 'manual',
      signal,
    });
  } catch (err) {
    throw classify(err);
  }
  if (res.status >= 300 && res.status < 400 && res.status !== 304) {
    await res.body?.cancel().catch(() => undefined);
    throw new FetchError('redirect', `redirect (HTTP ${res.status}) refused`);
  }
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > init.maxBytes) {
    await res.body?.cancel().catch(() => undefined);
    throw new FetchError('too_large', `response of ${declared} bytes exceeds ${init.maxBytes}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  if (res.body) {
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        size += value.byteLength;
        if (size > init.maxBytes) {
          await reader.cancel().catch(() => undefined);
          throw new FetchError('too_large', `response exceeds ${init.maxBytes} bytes`);
        }
        chunks.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
      }
    } catch (err) {
      throw err instanceof FetchError ? err : classify(err);
    }
  }
  return { status: res.status, headers: res.headers, body: Buffer.concat(chunks, size) };
}

function classify(err: unknown): FetchError {
  const e = err as Error & { cause?: Error & { code?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return new FetchError('timeout', 'timed out', { cause: err });
  const code = e.cause?.code ?? (e as { code?: string }).code;
  return new FetchError('network', code ? `network error ${code}` : `network error: ${e.message}`, { cause: err });
}
