/**
 * A development certificate authority: for `palisade demo` and the tests,
 * which need real certificates (valid, expired, wrong CA, with and without a
 * SPIFFE ID). Never for production: there cert-manager or SPIRE issue them.
 * Uses @peculiar/x509 on WebCrypto (ECDSA P-256), so no openssl binary is needed.
 */
import 'reflect-metadata'; // @peculiar/x509's dependency injection needs it loaded first
import { webcrypto } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface Pem {
  readonly cert: string;
  readonly key: string;
}

export interface DevCa extends Pem {
  readonly name: string;
  issue(options: IssueOptions): Promise<Pem>;
}

export interface IssueOptions {
  readonly commonName: string;
  /** SPIFFE ID for the URI SAN. */
  readonly spiffeId?: string;
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  readonly usage: 'server' | 'client' | 'both';
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN PRIVATE KEY-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END PRIVATE KEY-----\n`;
}

function serial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '1');
}

export async function createDevCa(name = 'Palisade Dev CA', validDays = 365): Promise<DevCa> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const now = Date.now();
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${name}`,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + validDays * DAY),
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const caPem = caCert.toString('pem') + '\n';
  const caKeyPem = await keyPem(keys.privateKey);
  return {
    name,
    cert: caPem,
    key: caKeyPem,
    async issue(o: IssueOptions): Promise<Pem> {
      const leafKeys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
      const san: x509.JsonGeneralName[] = [];
      if (o.spiffeId) san.push({ type: 'url', value: o.spiffeId });
      for (const d of o.dnsNames ?? []) san.push({ type: 'dns', value: d });
      for (const ip of o.ipAddresses ?? []) san.push({ type: 'ip', value: ip });
      const eku: string[] = [];
      if (o.usage !== 'client') eku.push(x509.ExtendedKeyUsage.serverAuth);
      if (o.usage !== 'server') eku.push(x509.ExtendedKeyUsage.clientAuth);
      const extensions: x509.Extension[] = [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
        new x509.ExtendedKeyUsageExtension(eku, false),
        await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
      ];
      if (san.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(san, false));
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: serial(),
        subject: `CN=${o.commonName}`,
        issuer: caCert.subject,
        notBefore: o.notBefore ?? new Date(Date.now() - 60_000),
        notAfter: o.notAfter ?? new Date(Date.now() + 30 * DAY),
        publicKey: leafKeys.publicKey,
        signingKey: keys.privateKey,
        signingAlgorithm: ALG,
        extensions,
      });
      return { cert: cert.toString('pem') + '\n', key: await keyPem(leafKeys.privateKey) };
    },
  };
}

/** Writes a PEM pair as <dir>/<name>.crt and <dir>/<name>.key (key mode 0600). */
export function writePem(dir: string, name: string, pem: Pem): { cert: string; key: string } {
  mkdirSync(dir, { recursive: true });
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  writeFileSync(cert, pem.cert);
  writeFileSync(key, pem.key, { mode: 0o600 });
  return { cert, key };
}
