import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log/logger.ts';
import { compilePolicy, parsePolicyText, validatePolicy } from '../../src/policy/load.ts';
import { createServices } from '../../src/sidecar/compose.ts';
import { policyYaml } from './support/policy.ts';

async function load(authentication: string): Promise<void> {
  const text = policyYaml(authentication);
  const { document, hash } = validatePolicy(parsePolicyText(text, 'p.yaml'), 'p.yaml');
  await compilePolicy(document, hash, '/etc/palisade', createServices(createLogger({ level: 'silent' })));
}
async function errorOf(authentication: string): Promise<string> {
  try {
    await load(authentication);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('policy was accepted');
}

const ISSUER = (extra = '') => `
  jwt:
    issuers:
      - { issuer: "https://idp.test/", jwksUri: "https://idp.test/jwks", audiences: [api]${extra} }
`;

describe('spec.authentication checks at load', () => {
  it('accepts a full section, offline (the JWKS and introspection hosts do not exist)', async () => {
    await load(`
      realm: shop
      mtls: { trustDomains: [prod.example.com], spiffeIds: ["spiffe://prod.example.com/ns/shop/*"] }
      jwt:
        tokenSource: { from: cookie, name: session }
        issuers:
          - issuer: https://idp.invalid/realms/shop
            jwksUri: https://idp.invalid/realms/shop/protocol/openid-connect/certs
            audiences: [shop-api]
            algorithms: [RS256, ES256]
      introspection:
        endpoint: https://idp.invalid/oauth2/introspect
        clientId: palisade
        clientSecret: { file: secrets/introspection }
      requirements:
        - { id: health, paths: [/healthz], methods: [GET], require: none }
        - { id: api, paths: ["/api/**"], require: { anyOf: [jwt, introspection] } }
        - { id: admin, paths: ["/admin/**"], require: { allOf: [mtls, jwt] } }
    `);
  });

  it('refuses alg none and HMAC algorithms, naming the field, the value and the fix', async () => {
    const m = await errorOf(ISSUER(', algorithms: [RS256, none, HS256]'));
    expect(m).toContain('spec.authentication.jwt.issuers[0].algorithms[1] ("none"): unsigned tokens would be accepted; remove it');
    expect(m).toContain('spec.authentication.jwt.issuers[0].algorithms[2] ("HS256"): HMAC algorithms are refused with a JWKS');
    expect(await errorOf(ISSUER(', algorithms: [RS257]'))).toContain('("RS257"): not a supported signing algorithm; use one of RS256');
  });

  it('refuses JWKS lifetime bounds that cross, naming both values and the fix', async () => {
    expect(await errorOf(ISSUER(', jwks: { cacheMinAgeSeconds: 600, cacheMaxAgeSeconds: 60 }'))).toContain('spec.authentication.jwt.issuers[0].jwks.cacheMinAgeSeconds (600): above cacheMaxAgeSeconds (60); lower it, or raise cacheMaxAgeSeconds');
    await load(ISSUER(', jwks: { cacheMinAgeSeconds: 60, cacheMaxAgeSeconds: 60 }'));
    expect(await errorOf(ISSUER(', jwks: { cacheMinAgeSeconds: 0 }'))).toContain('cacheMinAgeSeconds');
  });

  it('refuses a client secret written into the policy', async () => {
    const m = await errorOf(`
      introspection: { endpoint: "https://idp.test/introspect", clientId: p, clientSecret: "hunter2" }
    `);
    expect(m).toContain('spec.authentication.introspection.clientSecret: the secret itself must not be in the policy');
    expect(m).toContain('{ file:');
    expect(m).not.toContain('hunter2');
  });

  it('refuses plain http off loopback unless allowed, and credentials in URLs', async () => {
    expect(await errorOf(`
      jwt: { issuers: [{ issuer: x, jwksUri: "http://idp.corp/jwks", audiences: [a] }] }
    `)).toContain('spec.authentication.jwt.issuers[0].jwksUri: "http://idp.corp/jwks" uses plain http on a non-loopback host; use https://, or set spec.authentication.jwt.issuers[0].jwks.allowHttp: true');
    await load(`
      jwt: { issuers: [{ issuer: x, jwksUri: "http://idp.corp/jwks", audiences: [a], jwks: { allowHttp: true } }] }
    `);
    await load(`
      jwt: { issuers: [{ issuer: x, jwksUri: "http://127.0.0.1:8080/jwks", audiences: [a] }] }
    `);
    expect(await errorOf(`
      introspection: { endpoint: "https://u:p@idp.test/i", clientId: p, clientSecret: { env: S } }
    `)).toContain('must not contain credentials');
  });

  it('refuses requirements that name an unconfigured method, unknown words, and token sources without a name', async () => {
    expect(await errorOf(`
      requirements: [{ id: a, paths: [/a], require: jwt }]
    `)).toContain('spec.authentication.requirements[0].require: requires jwt, but spec.authentication.jwt.issuers is empty');
    expect(await errorOf(`
      defaultRequire: { anyOf: [mtls, introspection] }
    `)).toContain('spec.authentication.defaultRequire: requires introspection, but spec.authentication.introspection is not configured');
    expect(await errorOf(`
      requirements: [{ id: a, paths: [/a], require: jwtt }]
    `)).toContain('spec.authentication.requirements[0].require ("jwtt"): must be one of "none", "mtls", "jwt", "introspection"');
    const m = await errorOf(`
      jwt:
        tokenSource: { from: header }
        issuers: [{ issuer: x, jwksUri: "https://idp.test/jwks", audiences: [a] }]
    `);
    expect(m).toContain('spec.authentication.jwt.tokenSource: from: header needs name (the header that holds the token, e.g. x-access-token)');
  });

  it('refuses duplicate issuers and requirement ids; the schema names unknown fields', async () => {
    expect(await errorOf(`
      jwt:
        issuers:
          - { issuer: x, jwksUri: "https://a.test/jwks", audiences: [a] }
          - { issuer: x, jwksUri: "https://b.test/jwks", audiences: [b] }
    `)).toContain('("x"): listed twice');
    expect(await errorOf(`
      requirements:
        - { id: a, paths: [/a], require: none }
        - { id: a, paths: [/b], require: mtls }
    `)).toContain('id "a" is used twice');
    expect(await errorOf(`
      requirements: [{ id: a, paths: [/a], require: { oneOf: [jwt] } }]
    `)).toContain('policy/spec/authentication/requirements/0/require: unknown field "oneOf"');
    expect(await errorOf(ISSUER(', audience: [a]'))).toContain('unknown field "audience"');
  });
});
