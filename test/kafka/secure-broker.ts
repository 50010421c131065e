/**
 * A second, private Kafka broker for the TLS/SASL tests: the same jars as
 * deploy/kafka/broker.sh, one KRaft node in a temp dir with a SASL_SSL listener
 * (SCRAM-SHA-256/512 users created at format time, OAUTHBEARER with Kafka's
 * unsecured-JWT validator, mutual TLS from a dev CA), on free loopback ports.
 * Started and stopped by the test that uses it; never the shared broker.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDevCa, type DevCa, type Pem } from '../../src/tls/dev-ca.ts';

export interface SecureBroker {
  readonly bootstrap: string;
  readonly dir: string;
  readonly ca: DevCa;
  readonly caFile: string;
  /** A client certificate + key the broker accepts (mutual TLS). */
  readonly client: { readonly cert: string; readonly key: string };
  readonly scramUser: string;
  readonly scramPassword: string;
  stop(): Promise<void>;
}

function run(cmd: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, [...args], { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(stdout)));
  });
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** The broker jars, fetched by broker.sh (cached; no-op when present). */
async function libsDir(): Promise<string> {
  await run('bash', ['deploy/kafka/broker.sh', 'fetch'], 900_000);
  const version = process.env.KAFKA_VERSION ?? '4.1.2';
  const libs = join(process.env.PALISADE_CACHE ?? join(homedir(), '.cache', 'palisade'), `kafka-${version}`, 'libs');
  if (!existsSync(libs)) throw new Error(`broker jars not found in ${libs}`);
  return libs;
}

/** An unsecured (alg "none") JWT, the form Kafka's default OAUTHBEARER validator accepts; for tests only. */
export function unsecuredJwt(sub: string, lifetimeSeconds: number): string {
  const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  return `${b64({ alg: 'none' })}.${b64({ sub, iat: now - 5, exp: now + lifetimeSeconds })}.`;
}

export async function startSecureBroker(): Promise<SecureBroker> {
  const libs = await libsDir();
  const dir = mkdtempSync(join(tmpdir(), 'palisade-secure-broker-'));
  const [port, controllerPort, internalPort] = [await freePort(), await freePort(), await freePort()];
  const ca = await createDevCa('Palisade Kafka Test CA');
  const server: Pem = await ca.issue({ commonName: 'kafka-broker', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], usage: 'both' });
  const clientPem: Pem = await ca.issue({ commonName: 'palisade-sidecar', usage: 'client' });
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, ca.cert);
  writeFileSync(join(dir, 'broker-keystore.pem'), server.key + server.cert);
  const client = { cert: join(dir, 'client.crt'), key: join(dir, 'client.key') };
  writeFileSync(client.cert, clientPem.cert);
  writeFileSync(client.key, clientPem.key);
  const scramUser = 'palisade';
  const scramPassword = randomBytes(12).toString('hex');
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir);
  const props = join(dir, 'server.properties');
  const jaas = (module: string, extra = '') => `${module} required${extra};`;
  writeFileSync(
    props,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.bootstrap.servers=127.0.0.1:${controllerPort}`,
      `listeners=SASL_SSL://127.0.0.1:${port},INTERNAL://127.0.0.1:${internalPort},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=SASL_SSL://127.0.0.1:${port},INTERNAL://127.0.0.1:${internalPort}`,
      'listener.security.protocol.map=SASL_SSL:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT',
      'inter.broker.listener.name=INTERNAL',
      'controller.listener.names=CONTROLLER',
      `log.dirs=${dataDir}`,
      'auto.create.topics.enable=false',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=1',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'share.coordinator.state.topic.replication.factor=1',
      'share.coordinator.state.topic.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      'num.network.threads=1',
      'num.io.threads=2',
      'sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER',
      `listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=${jaas('org.apache.kafka.common.security.scram.ScramLoginModule')}`,
      `listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=${jaas('org.apache.kafka.common.security.scram.ScramLoginModule')}`,
      `listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=${jaas('org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule', ' unsecuredLoginStringClaim_sub="broker"')}`,
      'ssl.keystore.type=PEM',
      `ssl.keystore.location=${join(dir, 'broker-keystore.pem')}`,
      'ssl.truststore.type=PEM',
      `ssl.truststore.location=${caFile}`,
      // With SASL, Kafka only applies ssl.client.auth when it carries the listener prefix.
      'listener.name.sasl_ssl.ssl.client.auth=required',
      'ssl.endpoint.identification.algorithm=',
    ].join('\n') + '\n',
  );
  writeFileSync(
    join(dir, 'log4j2.properties'),
    ['status = warn', 'appender.out.type = Console', 'appender.out.name = STDOUT', 'appender.out.layout.type = PatternLayout', 'appender.out.layout.pattern = [%d] %p %m (%c)%n', 'rootLogger.level = INFO', 'rootLogger.appenderRef.out.ref = STDOUT'].join('\n') + '\n',
  );
  const jvm = ['-Xms64m', '-Xmx256m', '-XX:+UseSerialGC', '-Djava.awt.headless=true', `-Dlog4j2.configurationFile=${join(dir, 'log4j2.properties')}`, '-cp', `${libs}/*`];
  const clusterId = randomBytes(16).toString('base64url');
  await run(
    'java',
    [...jvm, 'kafka.tools.StorageTool', 'format', '--config', props, '--cluster-id', clusterId.startsWith('-') ? `A${clusterId.slice(1)}` : clusterId, '--standalone', '--add-scram', `SCRAM-SHA-256=[name=${scramUser},password=${scramPassword}]`, '--add-scram', `SCRAM-SHA-512=[name=${scramUser},password=${scramPassword}]`],
    120_000,
  );
  const child: ChildProcess = spawn('java', [...jvm, 'kafka.Kafka', props], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (c: Buffer) => (log += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (log += c.toString('utf8')));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const deadline = Date.now() + 120_000;
  while (!(log.includes('Kafka Server started') && (await portOpen(port)))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`secure broker did not start:\n${log.slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    bootstrap: `127.0.0.1:${port}`,
    dir,
    ca,
    caFile,
    client,
    scramUser,
    scramPassword,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(t);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
