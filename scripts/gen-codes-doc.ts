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

| Code | HTTP status | Disposition | Meaning |
| --- | --- | --- | --- |
${rows.join('\n')}
`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(new URL('../docs/codes.md', import.meta.url), renderCodesDoc());
}
