/** Builds validated (defaults filled) authentication sections from test policy text. */
import { validatePolicy, parsePolicyText } from '../../../src/policy/load.ts';
import type { AuthenticationSpec, PolicyDocument } from '../../../src/policy/document.ts';

export function policyYaml(authentication: string, authorization = DEFAULT_AUTHZ): string {
  return `apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: authn-test, version: "1" }
spec:
  authentication:
${indent(authentication, 4)}
  authorization:
${indent(authorization, 4)}
`;
}

export const DEFAULT_AUTHZ = `rules:
  - id: any-authenticated
    paths: ["/**"]
    authenticated: true
  - id: public
    paths: [/public/**]
    public: true`;

/** Dedents the fragment, then indents it by n. */
function indent(text: string, n: number): string {
  const pad = ' '.repeat(n);
  const lines = text.replace(/^\n+/, '').replace(/\s+$/, '').split('\n');
  const min = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => /^ */.exec(l)![0].length));
  return lines.map((l) => (l.trim() === '' ? '' : pad + l.slice(min))).join('\n');
}

export function validated(authentication: string): { doc: PolicyDocument; spec: AuthenticationSpec } {
  const { document } = validatePolicy(parsePolicyText(policyYaml(authentication), 'test'), 'test');
  return { doc: document, spec: document.spec.authentication };
}
