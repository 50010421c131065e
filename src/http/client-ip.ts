/**
 * The client IP that rate limits, the block list and decision records use.
 *
 * It is the TCP peer's address, unless the peer is a trusted proxy
 * (PALISADE_TRUSTED_PROXIES): then X-Forwarded-For is walked from the right,
 * skipping trusted hops, and the first untrusted address is the client. A
 * client can put anything at the left of X-Forwarded-For, so taking the
 * leftmost value (or believing the header from any peer) would let it pick
 * its own rate-limit key or step around an IP block.
 */
import { PalisadeError } from '../errors/codes.ts';
import { CidrError, CidrSet, formatIp, parseIp } from './cidr.ts';

export type ClientIpResolver = (peer: string, forwardedFor: string | readonly string[] | undefined) => string;

/** Parses the trusted-proxy list ("10.0.0.0/8, 192.168.1.7, fd00::/8"). */
export function parseTrustedProxies(list: string | readonly string[], source = 'PALISADE_TRUSTED_PROXIES'): CidrSet {
  const items = (typeof list === 'string' ? list.split(',') : list).map((s) => s.trim()).filter((s) => s.length > 0);
  const set = new CidrSet();
  for (const item of items) {
    try {
      set.add(item);
    } catch (err) {
      if (err instanceof CidrError) throw new PalisadeError('CONFIG_INVALID', `${source}: ${err.message}; give comma-separated IPs or CIDRs such as 10.0.0.0/8,192.0.2.7`);
      throw err;
    }
  }
  return set;
}

/** The peer address in canonical form (IPv4-mapped IPv6 becomes dotted IPv4). */
function canonical(addr: string): string {
  const p = parseIp(addr);
  return p ? formatIp(p) : addr;
}

export function createClientIpResolver(trusted: CidrSet | string | readonly string[]): ClientIpResolver {
  const set = trusted instanceof CidrSet ? trusted : parseTrustedProxies(trusted);
  if (set.size === 0) {
    // Nobody is trusted: the header never matters (the common sidecar case).
    return (peer) => (peer.indexOf(':') === -1 ? peer : canonical(peer));
  }
  return (peer, forwardedFor) => {
    const p = parseIp(peer);
    if (!p) return peer;
    let client = formatIp(p);
    if (!forwardedFor || !set.has(p)) return client;
    const hops = (typeof forwardedFor === 'string' ? forwardedFor : forwardedFor.join(',')).split(',');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = parseIp((hops[i] as string).trim());
      // A trusted proxy only ever appends a valid address; anything else was
      // written by the client, so the last trusted hop is as far as we go.
      if (!hop) return client;
      client = formatIp(hop);
      if (!set.has(hop)) return client;
    }
    return client;
  };
}
