/**
 * The demo's policy as it runs: src/demo/policy.yaml (a valid policy as
 * shipped, so `palisade policy check` passes on it) with its one JWT issuer
 * pointed at the demo's local identity provider, whose port is only known
 * once it has started. Edited as a YAML document, not as text, so the
 * comments stay and a renamed placeholder cannot be silently missed.
 */
import { readFileSync } from 'node:fs';
import { isMap, isSeq, parseDocument } from 'yaml';

const SHIPPED = new URL('./policy.yaml', import.meta.url);

export function demoPolicyText(idp: { readonly issuer: string; readonly jwksUri: string }): string {
  const doc = parseDocument(readFileSync(SHIPPED, 'utf8'));
  const issuers = doc.getIn(['spec', 'authentication', 'jwt', 'issuers']);
  // The demo's users hold tokens of exactly one issuer: anything else means the shipped file changed shape.
  if (!isSeq(issuers) || issuers.items.length !== 1 || !isMap(issuers.items[0])) {
    throw new Error(`${SHIPPED.pathname}: spec.authentication.jwt.issuers must hold exactly one issuer for the demo to point at its identity provider`);
  }
  doc.setIn(['spec', 'authentication', 'jwt', 'issuers', 0, 'issuer'], idp.issuer);
  doc.setIn(['spec', 'authentication', 'jwt', 'issuers', 0, 'jwksUri'], idp.jwksUri);
  return doc.toString();
}
