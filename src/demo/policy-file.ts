/**
 * The demo's policy as it runs: src/demo/policy.yaml (a valid policy as
 * shipped, so `palisade policy check` passes on it) with its one JWT issuer
 * pointed at the demo's local identity provider, whose port is only known
 * once it has started. Edited as a YAML document, not as text, so the
 * comments stay and a renamed placeholder cannot be silently missed.
 *
 * The copy in the demo directory is the user's to edit while the demo runs.
 * The next run does not overwrite an edited copy silently: it keeps it beside
 * as policy.yaml.edited-<time> and says so, or runs it (--keep-policy).
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { isMap, isSeq, parseDocument } from 'yaml';

const SHIPPED = new URL('./policy.yaml', import.meta.url);

export function demoPolicyText(idp: { readonly issuer: string; readonly jwksUri: string }, text = readFileSync(SHIPPED, 'utf8'), source = SHIPPED.pathname): string {
  const doc = parseDocument(text);
  const issuers = doc.getIn(['spec', 'authentication', 'jwt', 'issuers']);
  // The demo's users hold tokens of exactly one issuer: anything else means the shipped file changed shape.
  if (!isSeq(issuers) || issuers.items.length !== 1 || !isMap(issuers.items[0])) {
    throw new Error(`${source}: spec.authentication.jwt.issuers must hold exactly one issuer for the demo to point at its identity provider`);
  }
  doc.setIn(['spec', 'authentication', 'jwt', 'issuers', 0, 'issuer'], idp.issuer);
  doc.setIn(['spec', 'authentication', 'jwt', 'issuers', 0, 'jwksUri'], idp.jwksUri);
  return doc.toString();
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Where the demo records the hash of the policy copy it wrote (to tell an edited copy). */
export function writtenMarker(policyFile: string): string {
  return `${policyFile}.written-sha256`;
}

/**
 * Writes the policy copy for this run and returns what to tell the user about a copy a
 * previous run left and someone edited since (null when there was none, or it was unedited).
 * `keep`: run the edited copy (its issuer pointed at this run's identity provider) instead.
 */
export function prepareDemoPolicy(policyFile: string, idp: { readonly issuer: string; readonly jwksUri: string }, keep: boolean, now = new Date()): string | null {
  const marker = writtenMarker(policyFile);
  let note: string | null = null;
  let text = demoPolicyText(idp);
  if (existsSync(policyFile)) {
    const current = readFileSync(policyFile, 'utf8');
    const written = existsSync(marker) ? readFileSync(marker, 'utf8').trim() : null;
    if (written !== sha256(current)) {
      if (keep) {
        try {
          text = demoPolicyText(idp, current, policyFile);
          note = `running your edited ${policyFile} (--keep-policy), its JWT issuer pointed at this run's identity provider`;
        } catch {
          text = current;
          note = `running your edited ${policyFile} (--keep-policy) as it is: it has no single JWT issuer to point at this run's identity provider`;
        }
      } else {
        const backup = `${policyFile}.edited-${now.toISOString().replace(/[:.]/g, '-')}`;
        copyFileSync(policyFile, backup);
        note = `${policyFile} had been edited: your version is kept as ${backup}; this run starts from the shipped policy (palisade demo --keep-policy runs yours)`;
      }
    }
  }
  writeFileSync(policyFile, text);
  writeFileSync(marker, `${sha256(text)}\n`);
  return note;
}
