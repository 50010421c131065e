/** spec.authentication: which credentials each route requires. Owned by the authn stage (src/authn/). */
export const authenticationSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    mtls: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        trustDomains: { type: 'array', items: { type: 'string', minLength: 1 }, default: [], description: 'SPIFFE trust domains accepted from mTLS peers; empty accepts any peer the trust bundle verified. Default [].' },
      },
    },
  },
} as const;
