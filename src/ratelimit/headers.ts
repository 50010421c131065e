/**
 * RateLimit and RateLimit-Policy response fields, in the structured-field
 * form of draft-ietf-httpapi-ratelimit-headers (drafts -08 to -11):
 *
 *   RateLimit-Policy: "per-client";q=20;w=2
 *   RateLimit: "per-client";r=0;t=1
 *
 * q: quota (the bucket size, i.e. burst), w: the window in seconds in which
 * a quota refills (burst / rate), r: remaining requests (whole tokens), t:
 * seconds until the bucket is full again. One list member per limit that
 * applied to the request, named by the rule id. Retry-After (RFC 9110) on a
 * 429 says when the next token arrives.
 */

/** A policy item; computed once per rule at policy load. */
export function policyItem(name: string, quota: number, windowSeconds: number): string {
  return `"${name}";q=${quota};w=${windowSeconds}`;
}

export function limitItem(name: string, remaining: number, resetSeconds: number): string {
  return `"${name}";r=${remaining};t=${resetSeconds}`;
}
