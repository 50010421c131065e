/**
 * Regenerates docs/codes.md from src/errors/codes.ts (`node scripts/gen-codes-doc.ts`).
 * test/errors/codes.test.ts fails when the two disagree.
 */
import { writeFileSync } from 'node:fs';
import { CODES } from '../src/errors/codes.ts';

export function renderCodesDoc(): string {
  const rows = Object.entries(CODES).map(([code, s]) => `| \`${code}\` | ${s.status} | ${s.disposition} | ${s.description.replace(/\|/g, '\\|')} |`);
  return `# Reason and error codes

Every decision and every error response carries one stable code. The codes are
defined once, in \`src/errors/codes.ts\`; this page is generated from it
(\`node scripts/gen-codes-doc.ts\`) and a test checks that both agree.

Problem responses (RFC 9457, \`application/problem+json\`) look like:

\`\`\`json
{ "type": "urn:palisade:problem:AUTHZ_NO_MATCHING_RULE", "title": "Forbidden", "status": 403,
  "code": "AUTHZ_NO_MATCHING_RULE", "request_id": "5f0c1e2a9b7d4c3e" }
\`\`\`

## What the client is told

A refused client gets the stable code, the code's generic title, the status and
the request id. Why it was refused, in detail, is for operators: it goes to the
decision record's \`detail\` (OCSF \`status_detail\`, ECS \`event.reason\`), from
which logs and alerts are built, and never to the client. The rule applied to
every deny path:

- A problem \`detail\` is sent only when it helps a legitimate caller fix its own
  request, and it is then a fixed sentence: never a value of the policy (a block
  reason or ticket, a rule id, a limit, a detection threshold or baseline, a
  trust domain or issuer), never a value of the request (a key, a header, a
  token), never the state of the sidecar or the upstream.
- **Block list** (\`BLOCKED\`, static entries and run-time blocks by operators or
  the detector): no detail. The reason, ticket or detection stays in the event.
- **Authentication** (\`AUTHN_*\`): no detail; the code, its title and, on a 401
  for a route that accepts tokens, the RFC 6750 challenge (whose
  \`error_description\` is the title). Which check a credential got past (kid
  known, signature, audience) is worth knowing to whoever forges one.
- **Authorization** (\`AUTHZ_*\`): no detail, no rule id.
- **Rate limits and quotas** (\`RATE_LIMITED\`, \`RATE_LIMITED_GLOBAL\`,
  \`QUOTA_EXCEEDED\`): the standard \`Retry-After\`, \`RateLimit\` and
  \`RateLimit-Policy\` headers (what a well-behaved caller needs to back off;
  they name each enforced rule by its id, as the header format requires, and
  never a dry-run rule) and a fixed sentence in the body; which rule refused the
  request is in the event.
- **Limits** (\`URL_TOO_LONG\`, \`HEADERS_TOO_LARGE\`, \`BODY_TOO_LARGE\`,
  \`BODY_LIMIT_EXCEEDED\`): which limit, not its number (which only tells a
  prober how much it may send); the measure and the limit in the event.
- **Validation**: \`SCHEMA_VIOLATION\` keeps its \`errors\` (JSON pointer, rule
  and message, built from the API schema, which is the published contract, never
  from the value) and a summary of them; \`CONTENT_TYPE_NOT_ALLOWED\` names the
  accepted media types (contract too), not the one sent; \`ROUTE_UNKNOWN\` does
  not say whether the path exists for another method; \`BODY_DUPLICATE_KEY\` does
  not echo the key.
- **Request shape** (\`PATH_INVALID\`, \`REQUEST_MALFORMED\`, \`REQUEST_TIMEOUT\`,
  \`HEADER_DUPLICATE\`, \`METHOD_OVERRIDE_NOT_ALLOWED\`, \`PATH_OVERRIDE_NOT_ALLOWED\`):
  a fixed sentence naming what is wrong with the client's own request; which
  header, and the override's value, are in the event.
- **Upstream and sidecar** (\`UPSTREAM_*\`, \`INTERNAL_ERROR\`,
  \`POLICY_UNAVAILABLE\`): no detail; the upstream's error (\`ECONNREFUSED\`...) is
  in the event, the upstream's own headers and body never reach the client.

test/sidecar/deny-details.test.ts fires each of these paths at a real sidecar
and checks that the body carries no reason while the decision event does.

## Codes

| Code | HTTP status | Disposition | Meaning |
| --- | --- | --- | --- |
${rows.join('\n')}
`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(new URL('../docs/codes.md', import.meta.url), renderCodesDoc());
}
