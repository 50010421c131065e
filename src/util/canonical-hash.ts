/**
 * The SHA-256 of a value's canonical JSON (util/freeze.ts canonicalJson: sorted keys, undefined
 * members left out), computed without building that JSON as one string.
 *
 * For the 100,000-entry benchmark policy canonicalJson makes a 6 MB string out of ~1.5 million
 * intermediate pieces (every array and object joins its members' strings); this writes the same
 * bytes to the hash in 64 KiB pieces, so the load's heap peak no longer carries them. The digest is
 * the same (test/util/canonical-hash.test.ts compares it with canonicalJson's): the
 * policy hash is what `palisade policy check`, sign and verify print, and what fleets compare.
 */
import { createHash } from 'node:crypto';

const CHUNK = 64 * 1024;

export function canonicalJsonSha256(value: unknown): string {
  const hash = createHash('sha256');
  let buf = '';
  const put = (s: string) => {
    buf += s;
    if (buf.length >= CHUNK) {
      hash.update(buf);
      buf = '';
    }
  };
  write(value, put);
  if (buf.length > 0) hash.update(buf);
  return hash.digest('hex');
}

function write(value: unknown, put: (s: string) => void): void {
  if (value === null || typeof value !== 'object') {
    // As canonicalJson: a template string of JSON.stringify's answer (undefined in an array reads "undefined").
    put(`${JSON.stringify(value)}`);
    return;
  }
  if (Array.isArray(value)) {
    put('[');
    for (let i = 0; i < value.length; i++) {
      if (i > 0) put(',');
      write(value[i], put);
    }
    put(']');
    return;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
  put('{');
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    put(i > 0 ? `,${JSON.stringify(k)}:` : `${JSON.stringify(k)}:`);
    write(obj[k], put);
  }
  put('}');
}

