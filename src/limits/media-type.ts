/**
 * Media types of request bodies: the essence of a Content-Type header
 * ("application/json; charset=utf-8" -> "application/json") and matching
 * against allowed ranges: exact, "type/*", "*\/*", and structured-syntax
 * suffix ranges such as "application/*+json".
 */

/** Lowercase type/subtype without parameters; null when absent or not a media type. */
export function mediaTypeOf(header: string | undefined): string | null {
  if (header === undefined) return null;
  const semi = header.indexOf(';');
  const essence = (semi === -1 ? header : header.slice(0, semi)).trim().toLowerCase();
  const slash = essence.indexOf('/');
  if (slash <= 0 || slash === essence.length - 1 || essence.indexOf('/', slash + 1) !== -1 || /[\s,]/.test(essence)) return null;
  return essence;
}

/** True for JSON: application/json and any +json type (problem+json, vnd.api+json...). */
export function isJson(mediaType: string): boolean {
  return mediaType === 'application/json' || mediaType.endsWith('+json');
}

export function isForm(mediaType: string): boolean {
  return mediaType === 'application/x-www-form-urlencoded';
}

/** Does `mediaType` fall in `range`? */
export function inRange(mediaType: string, range: string): boolean {
  const r = range.toLowerCase();
  if (r === '*/*' || r === mediaType) return true;
  const slash = r.indexOf('/');
  const type = r.slice(0, slash);
  const sub = r.slice(slash + 1);
  if (!mediaType.startsWith(type + '/') && type !== '*') return false;
  if (sub === '*') return true;
  // application/*+json: any subtype with that suffix.
  if (sub.startsWith('*+')) return mediaType.endsWith(sub.slice(1));
  return false;
}

/** Most specific range of `ranges` containing `mediaType` (exact, then suffix, then type/*, then *\/*). */
export function bestRange(mediaType: string, ranges: readonly string[]): string | null {
  let best: string | null = null;
  let bestScore = -1;
  for (const r of ranges) {
    if (!inRange(mediaType, r)) continue;
    const score = r.toLowerCase() === mediaType ? 3 : r.includes('*+') ? 2 : r === '*/*' ? 0 : 1;
    if (score > bestScore) {
      best = r;
      bestScore = score;
    }
  }
  return best;
}
