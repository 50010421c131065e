/**
 * Maps a failed upstream call (an @fastify/reply-from / undici error) to the
 * stable code the client gets: nothing about the upstream leaks but the code.
 */
import type { Code } from '../errors/codes.ts';

export function upstreamErrorCode(e: Error & { code?: string; cause?: NodeJS.ErrnoException }): Code {
  const cause = e.cause?.code ?? e.code ?? '';
  if (cause === 'ECONNREFUSED' || cause === 'ENOTFOUND' || cause === 'EHOSTUNREACH') return 'UPSTREAM_UNREACHABLE';
  if (/TIMEOUT/i.test(cause) || /TIMEOUT/i.test(e.code ?? '')) return 'UPSTREAM_TIMEOUT';
  if (e.code === 'FST_REPLY_FROM_SERVICE_UNAVAILABLE') return 'UPSTREAM_UNAVAILABLE';
  return 'UPSTREAM_ERROR';
}
