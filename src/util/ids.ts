/** Identifiers. UUID v7 is time-ordered, so event ids sort by time in a SIEM. */
import { randomBytes } from 'node:crypto';

/**
 * Random hex digits, made 8 KiB at a time: one getrandom call and one hex encoding per ~500
 * ids instead of a buffer, a copy and an encoding per id (ids are made twice per request).
 * An id is a slice of it, each digit used once.
 */
let pool = '';
let offset = 0;

function hex(n: number): string {
  if (offset + n > pool.length) {
    pool = randomBytes(4096).toString('hex');
    offset = 0;
  }
  const out = pool.slice(offset, offset + n);
  offset += n;
  return out;
}

/** The RFC 9562 variant bits (10) over a random hex digit's two low bits. */
const VARIANT: Readonly<Record<string, string>> = Object.fromEntries([...'0123456789abcdef'].map((d) => [d, '89ab'[Number.parseInt(d, 16) & 3] as string]));

/** Three hex digits per 12-bit value: the timestamp is written from four of them (Number#toString(16) and padding cost more). */
const HEX3: readonly string[] = Array.from({ length: 4096 }, (_, i) => i.toString(16).padStart(3, '0'));

/** UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, the version, 74 random bits with the variant. */
export function uuidv7(now = Date.now()): string {
  const ms = Math.max(0, Math.floor(now));
  const hi = Math.floor(ms / 0x1000000) & 0xffffff;
  const lo = ms % 0x1000000;
  const r = hex(19);
  return `${HEX3[hi >>> 12]}${HEX3[hi & 0xfff]}${HEX3[lo >>> 12]!.slice(0, 2)}-${HEX3[lo >>> 12]!.slice(2)}${HEX3[lo & 0xfff]}-7${r.slice(0, 3)}-${VARIANT[r[3] as string]}${r.slice(4, 7)}-${r.slice(7, 19)}`;
}

/** Short request id (16 hex chars), echoed in problem+json and x-request-id. */
export function requestId(): string {
  return hex(16);
}
