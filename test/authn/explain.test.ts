import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log/logger.ts';
import { explainRequest, identityFromFlags } from '../../src/policy/explain.ts';
import { compilePolicy, parsePolicyText, validatePolicy } from '../../src/policy/load.ts';
import { createServices } from '../../src/sidecar/compose.ts';
import { policyYaml } from './support/policy.ts';

const POLICY = policyYaml(`
  mtls: { trustDomains: [test.local] }
  jwt:
    issuers: [{ issuer: "https://idp.test/", jwksUri: "https://idp.test/jwks", audiences: [api] }]
  requirements:
    - { id: public, paths: [/public/**], require: none }
    - { id: api, paths: ["/api/**"], require: jwt }
    - { id: admin, paths: ["/admin/**"], require: { allOf: [mtls, jwt] } }
`);

describe('policy explain: authentication', async () => {
  const { document, hash } = validatePolicy(parsePolicyText(POLICY, 'p'), 'p');
  const policy = await compilePolicy(document, hash, '/tmp', createServices(createLogger({ level: 'silent' })));
  const explain = (path: string, flags: Parameters<typeof identityFromFlags>[0] = {}) => explainRequest(policy, { method: 'GET', path, host: 'localhost', identity: identityFromFlags(flags) });

  it('names the requirement and refuses a sample without the credential it needs', async () => {
    const r = await explain('/api/orders');
    expect([r.verdict, r.code, r.stage, r.rule]).toEqual(['deny', 'AUTHN_REQUIRED', 'authn', 'api']);
    expect(r.trace).toContain('authn: requirement "api" applies: jwt');
  });

  it('accepts a sample with a token, and says it took the token as verified', async () => {
    const r = await explain('/api/orders', { subject: 'alice' });
    expect(r.verdict).toBe('allow');
    expect(r.trace.some((l) => l.includes('takes it as verified'))).toBe(true);
  });

  it('applies the mTLS rules to the sample SPIFFE ID', async () => {
    expect((await explain('/other', { spiffeId: 'spiffe://test.local/ns/a/sa/b' })).verdict).toBe('allow');
    const r = await explain('/other', { spiffeId: 'spiffe://evil.local/ns/a/sa/b' });
    expect([r.code, r.rule]).toEqual(['AUTHN_PEER_NOT_ALLOWED', null]);
    expect((await explain('/admin/x', { spiffeId: 'spiffe://test.local/ns/a/sa/b' })).code).toBe('AUTHN_REQUIRED');
    expect((await explain('/public/x')).verdict).toBe('allow');
  });
});
