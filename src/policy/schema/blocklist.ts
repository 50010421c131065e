/**
 * spec.blocklist: static block entries. Owned by the block list stage
 * (src/blocklist/). Entries added at run time (the detector, an operator)
 * live in the block list store, not here, and survive policy reloads.
 */
import { idSchema } from './common.ts';

const entrySchema = {
  type: 'object',
  additionalProperties: false,
  required: ['reason'],
  description: 'One blocked client: exactly one of ip, cidr, subject, spiffeId, clientId, tokenId; a reason; optionally an expiry.',
  properties: {
    id: { ...idSchema, description: 'Rule id recorded in decisions this entry makes. Default "policy:<kind>".' },
    ip: { type: 'string', minLength: 2, description: 'A client IP (IPv4 or IPv6), as resolved from the connection or a trusted proxy\'s X-Forwarded-For.' },
    cidr: { type: 'string', minLength: 4, description: 'A network, e.g. 203.0.113.0/24 or 2001:db8::/32 (host bits must be zero).' },
    subject: { type: 'string', minLength: 1, description: 'Identity subject (the authenticated principal: JWT sub, or the SPIFFE ID for mTLS-only clients).' },
    spiffeId: { type: 'string', pattern: '^spiffe://', description: 'mTLS peer SPIFFE ID; checked before authentication.' },
    clientId: { type: 'string', minLength: 1, description: 'OAuth2 client id of the identity.' },
    tokenId: { type: 'string', minLength: 1, description: 'Token id (jti) of a JWT or introspected token.' },
    reason: { type: 'string', minLength: 1, maxLength: 200, description: 'Why, for operators: recorded in the decision event (detail) and shown by policy explain; never sent to the blocked client, who gets the code BLOCKED, a generic title and the request id.' },
    expires: { type: 'string', format: 'date-time', description: 'RFC 3339 time after which the entry no longer applies. Default: never.' },
    audit: { type: 'boolean', default: false, description: 'Dry-run this entry: a match is recorded as would_deny, not enforced. Default false.' },
  },
} as const;

export const blocklistSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    entries: { type: 'array', default: [], items: entrySchema, description: 'Static block entries. Default [].' },
  },
} as const;
