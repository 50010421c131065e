import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { PalisadeError } from '../../src/errors/codes.ts';
import { createLogger } from '../../src/log/logger.ts';
import { loadPolicyFile, validatePolicy } from '../../src/policy/load.ts';
import { createServices } from '../../src/sidecar/compose.ts';

const dir = mkdtempSync(join(tmpdir(), 'palisade-load-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const services = createServices(createLogger({ level: 'silent' }));

let n = 0;
async function load(text: string, ext = 'json') {
  const file = join(dir, `p${n++}.${ext}`);
  writeFileSync(file, text);
  return loadPolicyFile(file, services);
}
async function refusal(text: string, ext = 'json'): Promise<PalisadeError & { file: string }> {
  const file = join(dir, `p${n++}.${ext}`);
  writeFileSync(file, text);
  try {
    await loadPolicyFile(file, services);
  } catch (err) {
    expect(err).toBeInstanceOf(PalisadeError);
    return Object.assign(err as PalisadeError, { file });
  }
  throw new Error('policy was accepted');
}

const lineOf = (text: string, needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

/** What loadPolicyFile did with every file before JSON got its own parser: the YAML parser. */
function hashByYamlParser(text: string): string {
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  if (!Array.isArray(docs) || docs.length !== 1) throw new Error('not one YAML document');
  if (docs[0]!.errors.length > 0) throw new Error(docs[0]!.errors.map((e) => e.message).join('; '));
  return validatePolicy(docs[0]!.toJS({ maxAliasCount: 100 }), 'yaml').hash;
}

const POLICY = {
  apiVersion: 'palisade.dev/v1',
  kind: 'Policy',
  metadata: { name: 'json-and-yaml', version: '7' },
  spec: {
    authorization: {
      rules: [
        { id: 'no-admin', effect: 'deny', paths: ['/admin/**'] },
        { id: 'orders', methods: ['GET', 'POST'], paths: ['/api/orders', '/api/orders/**'], authenticated: true },
      ],
    },
    blocklist: {
      entries: [
        { id: 'net', cidr: '203.0.113.0/24', reason: 'abuse "quoted", back\\slash, tab\t, é, 😀, \u2028' },
        { ip: '198.51.100.7', reason: 'scanner' },
        { cidr: '2001:db8::/32', reason: 'v6' },
      ],
    },
    rateLimits: { global: { rate: 1000, burst: 2000 }, rules: [{ id: 'per-client', key: ['identity'], rate: 10, burst: 20 }] },
  },
};

describe('loadPolicyFile: JSON through JSON.parse, YAML through the YAML parser', () => {
  it('gives a JSON file the same document and hash as the YAML parser made of it, and as the same policy in YAML', async () => {
    const minified = JSON.stringify(POLICY);
    // Escapes JSON.stringify never writes (\/, \u for plain characters), and CRLF line ends.
    const handWritten = JSON.stringify(POLICY, null, 2).replace('"scanner"', '"sc\\u0061nner"').replace('/24', '\\/24').replaceAll('\n', '\r\n');
    const fromYaml = await load(stringify(POLICY), 'yaml');
    for (const text of [minified, handWritten]) {
      const fromJson = await load(text);
      expect(fromJson.hash).toBe(hashByYamlParser(text));
      expect(fromJson.hash).toBe(fromYaml.hash);
      expect(fromJson.document).toEqual(fromYaml.document);
      expect(Object.isFrozen(fromJson.document.spec)).toBe(true);
    }
  });

  it('decides by content: JSON in a .yaml file, and a byte order mark, are JSON', async () => {
    const fromYaml = await load(stringify(POLICY), 'yaml');
    expect((await load(`\n  ${JSON.stringify(POLICY)}`, 'yaml')).hash).toBe(fromYaml.hash);
    expect((await load(`\uFEFF${JSON.stringify(POLICY)}`)).hash).toBe(fromYaml.hash);
  });

  it('still accepts what only YAML accepts in a JSON-looking file (a trailing comma, a comment), as before', async () => {
    const text = JSON.stringify(POLICY, null, 2).replace(/\n}$/, ',\n}\n# generated\n');
    expect(() => JSON.parse(text)).toThrow();
    expect((await load(text)).hash).toBe(hashByYamlParser(JSON.stringify(POLICY)));
  });

  it('refuses a duplicate key in JSON, naming the key, its line and column and its pointer', async () => {
    const text = JSON.stringify(POLICY, null, 2).replace('"burst": 20\n', '"burst": 20,\n        "rate": 1000000\n');
    const e = await refusal(text);
    expect(e.code).toBe('POLICY_UNREADABLE');
    const line = lineOf(text, '"rate": 1000000');
    expect(e.message).toBe(`${e.file}: invalid JSON at line ${line}, column 9 (/spec/rateLimits/rules/0/rate): duplicate key "rate": a key may appear only once in an object`);
    // The YAML parser refused the same text: same code.
    expect(() => hashByYamlParser(text)).toThrow(/unique/);
  });

  it('refuses a key duplicated through an escape, as the YAML parser does', async () => {
    const e = await refusal(JSON.stringify(POLICY).replace('"kind"', '"\\u006bind":"Policy","kind"'));
    expect(e.code).toBe('POLICY_UNREADABLE');
    expect(e.message).toMatch(/invalid JSON at line 1, column \d+ \(\/kind\): duplicate key "kind"/);
  });

  it('still refuses duplicate keys in YAML', async () => {
    const e = await refusal(stringify(POLICY).replace('kind: Policy', 'kind: Policy\nkind: Policy'), 'yaml');
    expect(e.code).toBe('POLICY_UNREADABLE');
    expect(e.message).toMatch(/invalid YAML: Map keys must be unique at line 3/);
  });

  it('reports a syntax error with the file name, line and column, also where V8 gives no position', async () => {
    // A missing ',' (V8 says where; found at the next member) and a stray '}'
    // in an array (V8 says "Unexpected token", no position).
    const pretty = JSON.stringify(POLICY, null, 2);
    const missingComma = pretty.replace('"kind": "Policy",', '"kind": "Policy"');
    const strayBrace = pretty.replace('"GET",', '"GET", }');
    const cases: [text: string, where: string][] = [
      [missingComma, `line ${lineOf(missingComma, '"metadata"')}, column 3 (/kind)`],
      [strayBrace, `line ${lineOf(strayBrace, '"GET", }')}, column 20 (/spec/authorization/rules/1/methods/1)`],
    ];
    for (const [text, where] of cases) {
      expect(() => hashByYamlParser(text)).toThrow(); // YAML refuses it too: a real error
      const e = await refusal(text);
      expect(e.code).toBe('POLICY_UNREADABLE');
      expect(e.message).toMatch(new RegExp(`^${e.file.replaceAll('.', '\\.')}: invalid JSON at ${where.replace(/[()]/g, '\\$&')}: `));
    }
  });

  it('still validates after parsing: a schema error is POLICY_INVALID, as for YAML', async () => {
    const e = await refusal(JSON.stringify({ ...POLICY, spec: { ...POLICY.spec, mode: 'sometimes' } }));
    expect(e.code).toBe('POLICY_INVALID');
  });
});
