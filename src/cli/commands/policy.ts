/**
 * `palisade policy check FILE...`   validate offline exactly as the sidecar would (exit 1 on any error)
 * `palisade policy explain FILE --method M --path P [--host H] [identity flags]`
 *                                   which rule decides a sample request, and why
 * `palisade policy diff OLD NEW --decisions FILE`
 *                                   replay recorded decisions against two policies
 * `palisade policy sign FILE --key KEY.pem` / `palisade policy verify FILE --key PUB.pem`
 *                                   cosign sign-blob signatures (commands/policy-sign.ts)
 */
import { PalisadeError } from '../../errors/codes.ts';
import { createLogger } from '../../log/logger.ts';
import { loadPolicyFile } from '../../policy/load.ts';
import { explainRequest, identityFromFlags } from '../../policy/explain.ts';
import { createServices } from '../../sidecar/compose.ts';
import { parseFlags } from '../args.ts';

const quietServices = () => createServices(createLogger({ level: 'silent' }));

async function check(files: string[]): Promise<number> {
  if (files.length === 0) throw new PalisadeError('CONFIG_INVALID', 'policy check: name at least one policy file');
  let failed = 0;
  for (const file of files) {
    try {
      const p = await loadPolicyFile(file, quietServices());
      process.stdout.write(`ok   ${file}: policy "${p.name}" version ${p.version}, hash ${p.hash}\n`);
    } catch (err) {
      failed++;
      const code = err instanceof PalisadeError ? err.code : 'POLICY_INVALID';
      process.stderr.write(`FAIL ${file}: ${code}: ${(err as Error).message}\n`);
    }
  }
  return failed === 0 ? 0 : 1;
}

async function explain(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(
    argv,
    {
      method: { type: 'string', default: 'GET' },
      path: { type: 'string' },
      host: { type: 'string', default: 'localhost' },
      'spiffe-id': { type: 'string' },
      subject: { type: 'string' },
      issuer: { type: 'string' },
      scope: { type: 'string', multiple: true },
      group: { type: 'string', multiple: true },
      claims: { type: 'string' },
      'client-id': { type: 'string' },
      identity: { type: 'string' },
      ip: { type: 'string' },
      json: { type: 'boolean' },
    },
    'palisade policy explain',
  );
  const file = positionals[0];
  if (!file || !values.path) throw new PalisadeError('CONFIG_INVALID', 'usage: palisade policy explain FILE --method M --path P [--host H] [--ip ADDR] [--spiffe-id ID | --subject S --claims JSON --scope S --group G]');
  const policy = await loadPolicyFile(file, quietServices());
  const identity = identityFromFlags({
    identity: values.identity,
    spiffeId: values['spiffe-id'],
    subject: values.subject,
    issuer: values.issuer,
    scopes: values.scope,
    groups: values.group,
    claims: values.claims,
    clientId: values['client-id'],
  });
  const result = explainRequest(policy, { method: values.method.toUpperCase(), path: values.path, host: values.host, identity, clientIp: values.ip ?? null });
  if (values.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  else {
    process.stdout.write(`policy "${policy.name}" version ${policy.version} (hash ${policy.hash.slice(0, 12)})\n`);
    process.stdout.write(`request ${result.method} ${result.path}${result.normalizedFrom ? ` (normalized from ${result.normalizedFrom})` : ''}\n`);
    for (const line of result.trace) process.stdout.write(`  - ${line}\n`);
    process.stdout.write(`verdict: ${result.verdict.toUpperCase()}${result.code ? ` ${result.code}` : ''}${result.rule ? ` by rule "${result.rule}"` : ''}${result.stage ? ` at stage ${result.stage}` : ''}\n`);
    for (const w of result.wouldDeny) process.stdout.write(`would deny (audit): ${w.code} at stage ${w.stage}${w.rule ? ` by rule "${w.rule}"` : ''}\n`);
  }
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'check':
      return check(rest);
    case 'explain':
      return explain(rest);
    case 'sign':
    case 'verify': {
      const mod = await import('./policy-sign.ts');
      return mod[sub].run(rest);
    }
    case 'diff': {
      const mod = await import('../../policy/diff-command.ts');
      return mod.run(rest);
    }
    default:
      process.stderr.write('usage: palisade policy check FILE... | explain FILE --method M --path P [...] | diff OLD NEW --decisions FILE | sign FILE --key KEY.pem | verify FILE --key PUB.pem\n');
      return 2;
  }
}
