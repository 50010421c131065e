/** Identifiers. UUID v7 is time-ordered, so event ids sort by time in a SIEM. */
import { randomBytes } from 'node:crypto';

let pool = Buffer.alloc(0);
let offset = 0;

function random(n: number): Buffer {
  // One getrandom call per 4 KiB instead of per id: ids are made on every request.
  if (offset + n > pool.length) {
    pool = randomBytes(4096);
    offset = 0;
  }
  const out = pool.subarray(offset, offset + n);
  offset += n;
  return out;
}

export function uuidv7(now = Date.now()): string {
  const b = Buffer.from(random(16));
  b.writeUIntBE(now, 0, 6);
  b[6] = (b[6]! & 0x0f) | 0x70;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Short request id (16 hex chars), echoed in problem+json and x-request-id. */
export function requestId(): string {
  return random(8).toString('hex');
}
