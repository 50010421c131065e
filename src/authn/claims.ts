/** Scopes and groups from token claims, per the policy's claim mapping. */
import { claimAt } from '../authz/claims.ts';

const EMPTY: readonly string[] = Object.freeze([]);

/** Union of the values of the named claims; each may be a space-separated string or an array of strings. */
export function valuesOf(claims: Readonly<Record<string, unknown>>, names: readonly string[]): readonly string[] {
  let out: string[] | null = null;
  for (const name of names) {
    const v = claimAt(claims, name);
    let items: readonly unknown[];
    if (typeof v === 'string') items = v.split(' ');
    else if (Array.isArray(v)) items = v;
    else continue;
    for (const item of items) {
      if (typeof item !== 'string' || item === '') continue;
      out ??= [];
      if (!out.includes(item)) out.push(item);
    }
  }
  return out ? Object.freeze(out) : EMPTY;
}

export function stringClaim(claims: Readonly<Record<string, unknown>>, name: string): string | null {
  const v = claims[name];
  return typeof v === 'string' && v !== '' ? v : null;
}

export function numberClaim(claims: Readonly<Record<string, unknown>>, name: string): number | null {
  const v = claims[name];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}
