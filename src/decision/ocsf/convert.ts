/**
 * Field conversions between the decision record and OCSF, each paired with
 * its inverse. The writer uses both halves: when a value does not survive
 * the round trip (an odd Host header, a non-IP in X-Forwarded-For), it keeps
 * the original in unmapped.palisade.exact so `recordFromOcsf` stays lossless
 * without ever emitting a value that breaks the OCSF type.
 */
import { isIP } from 'node:net';

/** Node's "TLSv1.3" -> OCSF "1.3" (tls.version is the protocol version number). */
export function tlsVersionToOcsf(protocol: string): string {
  if (protocol === 'TLSv1') return '1.0';
  const m = /^TLSv(1\.[1-3])$/.exec(protocol);
  return m ? (m[1] as string) : protocol;
}

export function tlsVersionFromOcsf(version: string): string {
  if (version === '1.0') return 'TLSv1';
  return /^1\.[1-3]$/.test(version) ? `TLSv${version}` : version;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

/** OpenSSL's certificate time ("Jan  1 00:00:00 2025 GMT", as Node prints valid_from) -> epoch ms, or null. */
export function certTimeToMs(text: string): number | null {
  const m = /^([A-Z][a-z]{2}) +(\d{1,2}) (\d{2}):(\d{2}):(\d{2}) (\d{4}) GMT$/.exec(text);
  if (!m) return null;
  const month = MONTHS.indexOf(m[1] as (typeof MONTHS)[number]);
  if (month < 0) return null;
  return Date.UTC(Number(m[6]), month, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]));
}

export function certTimeFromMs(ms: number): string {
  const d = new Date(ms);
  const p2 = (n: number) => String(n).padStart(2, '0');
  return `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} ${d.getUTCFullYear()} GMT`;
}

/** A SHA-256 fingerprint as Node prints it (32 bytes, uppercase, colon-separated). */
export const SHA256_NODE = /^(?:[0-9A-F]{2}:){31}[0-9A-F]{2}$/;

/** Node's "AB:CD:..." -> "abcd..." (the form SIEMs and threat intel use for SHA-256 fingerprints). */
export function fingerprintToOcsf(fp: string): string {
  return fp.replaceAll(':', '').toLowerCase();
}

export function fingerprintFromOcsf(value: string): string {
  if (!/^(?:[0-9a-f]{2})+$/.test(value)) return value;
  return value.toUpperCase().replace(/(..)(?!$)/g, '$1:');
}

export interface HostParts {
  readonly hostname: string;
  readonly port?: number;
}

/** Splits a Host header into hostname and port (IPv6 literals lose their brackets). */
export function splitHost(host: string): HostParts {
  const v6 = /^\[([^\]]*)\](?::(\d{1,5}))?$/.exec(host);
  if (v6) return v6[2] !== undefined ? { hostname: v6[1] as string, port: Number(v6[2]) } : { hostname: v6[1] as string };
  const m = /^([^:]*):(\d{1,5})$/.exec(host);
  if (m && Number(m[2]) <= 65535) return { hostname: m[1] as string, port: Number(m[2]) };
  return { hostname: host };
}

export function joinHost(hostname: string, port: number | undefined): string {
  const h = hostname.includes(':') ? `[${hostname}]` : hostname;
  return port === undefined ? h : `${h}:${port}`;
}

/** An address OCSF's ip_t accepts (it also caps the length at 40, which a long IPv6 zone id can pass). */
export function isIpAddress(value: string): boolean {
  return value.length <= 40 && isIP(value) !== 0;
}
