/**
 * The admission webhook over real TLS, answering AdmissionReview v1 requests
 * shaped like the API server's: the patch is applied with an independent RFC
 * 6902 implementation and the resulting Pod must be valid Kubernetes; errors
 * fail closed with a clear message; the serving certificate rotates live.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadWebhookSettings } from '../../src/config/webhook-settings.ts';
import { injectPod } from '../../src/deploy/inject/pod.ts';
import { resolveInjectOptions } from '../../src/deploy/inject/options.ts';
import { INJECT_PATH, startWebhookServer, type WebhookServer } from '../../src/deploy/webhook/server.ts';
import { createLogger } from '../../src/log/logger.ts';
import { createDevCa, type DevCa } from '../../src/tls/dev-ca.ts';
import { applyPatch } from './helpers/apply-patch.ts';
import { allProblems } from './helpers/k8s-validate.ts';

const SERVICE_DNS = 'palisade-webhook.palisade-system.svc';
type Obj = Record<string, any>;

let ca: DevCa;
let dir: string;
let server: WebhookServer;
const opts = resolveInjectOptions({ image: 'ghcr.io/palisade-dev/palisade:test' });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'palisade-webhook-'));
  ca = await createDevCa('Webhook Test CA');
  const leaf = await ca.issue({ commonName: SERVICE_DNS, dnsNames: [SERVICE_DNS], usage: 'server' });
  writeFileSync(join(dir, 'tls.crt'), leaf.cert);
  writeFileSync(join(dir, 'tls.key'), leaf.key, { mode: 0o600 });
  const settings = loadWebhookSettings({}, { host: '127.0.0.1', port: 0, tlsCert: join(dir, 'tls.crt'), tlsKey: join(dir, 'tls.key'), maxBodyBytes: 256 * 1024, certPollMs: 60_000 });
  server = await startWebhookServer(settings, opts, createLogger({ level: 'silent' }));
});

afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Reply {
  readonly status: number;
  readonly body: string;
  readonly json: Obj;
  readonly serial: string;
}

/** One HTTPS call as the API server makes it: trusts only the CA, checks the Service DNS name. */
function call(path: string, body: string | Buffer | undefined, init: { method?: string; contentType?: string; port?: number; ca?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: init.port ?? server.port,
        path,
        method: init.method ?? 'POST',
        ca: init.ca ?? ca.cert,
        servername: SERVICE_DNS,
        agent: false,
        headers: body === undefined ? {} : { 'content-type': init.contentType ?? 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const serial = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().serialNumber;
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => {
          let json: Obj = {};
          try {
            json = JSON.parse(text) as Obj;
          } catch {
            // plain-text error bodies
          }
          resolve({ status: res.statusCode ?? 0, body: text, json, serial });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A pod as the API server sends it to a mutating webhook: defaults applied, no name yet. */
function pod(meta: Obj = {}, containers?: Obj[]): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: 'orders-7d9f8b6c5-', namespace: 'shop', labels: { app: 'orders', 'pod-template-hash': '7d9f8b6c5' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'orders-7d9f8b6c5', uid: randomUUID(), controller: true, blockOwnerDeletion: true }], ...meta },
    spec: {
      containers: containers ?? [
        {
          name: 'orders',
          image: 'registry.example.com/orders:2.1.0',
          ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
          resources: {},
          terminationMessagePath: '/dev/termination-log',
          terminationMessagePolicy: 'File',
          imagePullPolicy: 'IfNotPresent',
        },
      ],
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: 'orders',
      serviceAccount: 'orders',
      securityContext: {},
      schedulerName: 'default-scheduler',
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
      priority: 0,
      tolerations: [
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
        { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
      ],
    },
    status: {},
  };
}

function review(object: Obj, overrides: Obj = {}): Obj {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: randomUUID(),
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'shop',
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller', uid: randomUUID(), groups: ['system:serviceaccounts', 'system:authenticated'] },
      object,
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' },
      ...overrides,
    },
  };
}

async function admit(object: Obj, overrides: Obj = {}): Promise<{ rv: Obj; reply: Reply; uid: string }> {
  const body = review(object, overrides);
  const reply = await call(INJECT_PATH, JSON.stringify(body));
  expect(reply.status).toBe(200);
  expect(reply.json['apiVersion']).toBe('admission.k8s.io/v1');
  expect(reply.json['kind']).toBe('AdmissionReview');
  expect(reply.json['response']['uid']).toBe(body['request']['uid']);
  return { rv: reply.json['response'], reply, uid: body['request']['uid'] };
}

function patched(original: Obj, response: Obj): Obj {
  expect(response['patchType']).toBe('JSONPatch');
  const ops = JSON.parse(Buffer.from(response['patch'], 'base64').toString('utf8')) as { op: string; path: string; value?: unknown }[];
  return applyPatch(original, ops);
}

describe('palisade webhook: AdmissionReview v1 over TLS', () => {
  it('injects a pod that opts in with the label; the patched pod is valid Kubernetes', async () => {
    const p = pod({ labels: { app: 'orders', 'palisade.dev/inject': 'enabled' } });
    const { rv } = await admit(p);
    expect(rv['allowed']).toBe(true);
    const after = patched(p, rv);
    expect(after['spec']['initContainers'][0]).toMatchObject({ name: 'palisade', image: 'ghcr.io/palisade-dev/palisade:test', restartPolicy: 'Always' });
    expect(after['metadata']['annotations']['palisade.dev/injected']).toBe('native');
    // Exactly what `palisade inject` produces for the same pod: one shared function.
    const direct = injectPod({ metadata: p['metadata'], spec: p['spec'] }, opts, { where: 'x', defaultRestartPolicy: 'Always' });
    expect(direct.status).toBe('injected');
    if (direct.status === 'injected') expect(after).toEqual({ ...p, metadata: direct.metadata, spec: direct.spec });
    expect(allProblems([after])).toEqual([]);
    // Everything else of the pod is untouched.
    expect(after['spec']['containers']).toEqual(p['spec']['containers']);
    expect(after['metadata']['ownerReferences']).toEqual(p['metadata']['ownerReferences']);
  });

  it('injects a pod that opts in with the annotation, honouring palisade.dev/* overrides', async () => {
    const p = pod({ annotations: { 'palisade.dev/inject': 'enabled', 'palisade.dev/policy': 'orders-policy', 'palisade.dev/memory-limit': '384Mi' } });
    const { rv } = await admit(p);
    const after = patched(p, rv);
    const sidecar = after['spec']['initContainers'][0];
    expect(sidecar.resources.limits.memory).toBe('384Mi');
    expect(after['spec']['volumes'].find((v: Obj) => v['name'] === 'palisade-policy').configMap.name).toBe('orders-policy');
    expect(allProblems([after])).toEqual([]);
  });

  it('leaves pods alone that did not opt in, opted out, or are injected already', async () => {
    for (const meta of [{}, { labels: { 'palisade.dev/inject': 'disabled' } }]) {
      const { rv } = await admit(pod(meta));
      expect(rv).toEqual({ uid: rv['uid'], allowed: true });
    }
    // Injected by `palisade inject` before it reached the API server.
    const injected = pod({ labels: { 'palisade.dev/inject': 'enabled' } });
    const first = patched(injected, (await admit(injected)).rv);
    const again = await admit(first);
    expect(again.rv).toEqual({ uid: again.uid, allowed: true });
  });

  it('injects an opted-in pod that carries the injected mark but no sidecar', async () => {
    const p = pod({ labels: { 'palisade.dev/inject': 'enabled' }, annotations: { 'palisade.dev/injected': 'native' } });
    const { rv } = await admit(p);
    const after = patched(p, rv);
    expect(after['spec']['initContainers'].map((c: Obj) => c['name'])).toEqual(['palisade']);
    expect(allProblems([after])).toEqual([]);
  });

  it('ignores what is not a pod CREATE', async () => {
    const p = pod({ labels: { 'palisade.dev/inject': 'enabled' } });
    const update = await admit(p, { operation: 'UPDATE', oldObject: p });
    expect(update.rv).toEqual({ uid: update.uid, allowed: true });
    const deployment = await admit({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: {} }, { kind: { group: 'apps', version: 'v1', kind: 'Deployment' }, resource: { group: 'apps', version: 'v1', resource: 'deployments' } });
    expect(deployment.rv).toEqual({ uid: deployment.uid, allowed: true });
  });

  it('denies an opted-in pod it cannot protect, saying why (fail closed)', async () => {
    const p = pod({ labels: { 'palisade.dev/inject': 'enabled' } }, [{ name: 'palisade', image: 'impostor:1', ports: [{ containerPort: 8080 }] }]);
    const { rv } = await admit(p);
    expect(rv['allowed']).toBe(false);
    expect(rv['patch']).toBeUndefined();
    expect(rv['status']).toMatchObject({ status: 'Failure', code: 400, reason: 'BadRequest' });
    expect(rv['status']['message']).toMatch(/palisade sidecar injection failed \(INJECT_NAME_CONFLICT\): pod shop\/orders-7d9f8b6c5-\*: spec.containers already has a container named "palisade"/);

    const badAnnotation = await admit(pod({ labels: { 'palisade.dev/inject': 'enabled' }, annotations: { 'palisade.dev/listen-port': '8080' } }));
    expect(badAnnotation.rv['allowed']).toBe(false);
    expect(badAnnotation.rv['status']['message']).toContain('INJECT_PORT_CONFLICT');
  });

  it('refuses malformed requests with an HTTP error (the API server then applies failurePolicy)', async () => {
    expect((await call(INJECT_PATH, '{"apiVersion": ')).status).toBe(400);
    const v1beta1 = await call(INJECT_PATH, JSON.stringify({ ...review(pod()), apiVersion: 'admission.k8s.io/v1beta1' }));
    expect(v1beta1.status).toBe(400);
    expect(v1beta1.body).toContain('admissionReviewVersions');
    const noUid = review(pod());
    delete noUid['request']['uid'];
    expect((await call(INJECT_PATH, JSON.stringify(noUid))).status).toBe(400);
    const notAPod = review({ kind: 'Pod' });
    notAPod['request']['object'] = 'nope';
    expect((await call(INJECT_PATH, JSON.stringify(notAPod))).status).toBe(400);
    expect((await call(INJECT_PATH, JSON.stringify(review(pod())), { contentType: 'text/plain' })).status).toBe(415);
    expect((await call(INJECT_PATH, undefined, { method: 'GET' })).status).toBe(405);
    expect((await call('/mutate', JSON.stringify(review(pod())))).status).toBe(404);
  });

  it('refuses a body over the limit without reading it all', async () => {
    const huge = JSON.stringify(review(pod({ annotations: { filler: 'x'.repeat(300 * 1024) } })));
    const r = await call(INJECT_PATH, huge).catch((err: NodeJS.ErrnoException) => ({ status: -1, body: String(err.code) }) as Reply);
    // Either the 413 arrives, or the connection is cut while we are still sending.
    if (r.status !== -1) expect(r.status).toBe(413);
    else expect(r.body).toMatch(/EPIPE|ECONNRESET/);
  });

  it('serves /livez and /readyz for its probes', async () => {
    expect((await call('/livez', undefined, { method: 'GET' })).status).toBe(200);
    expect((await call('/readyz', undefined, { method: 'GET' })).status).toBe(200);
  });

  it('speaks only TLS, with its certificate: untrusted clients and plaintext get nothing', async () => {
    const other = await createDevCa('Some Other CA');
    await expect(call('/livez', undefined, { method: 'GET', ca: other.cert })).rejects.toThrow(/self-signed|unable to verify|certificate/i);
    const plaintext = await new Promise<string>((resolve) => {
      const s = connect(server.port, '127.0.0.1', () => s.write('GET /livez HTTP/1.1\r\nHost: x\r\n\r\n'));
      let got = '';
      s.on('data', (d) => (got += d.toString('latin1')));
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
    });
    expect(plaintext).not.toContain('200');
  });

  it('picks up a renewed certificate without a restart, and keeps the old one when the new pair is broken', async () => {
    const before = await call('/livez', undefined, { method: 'GET' });
    const renewed = await ca.issue({ commonName: SERVICE_DNS, dnsNames: [SERVICE_DNS], usage: 'server' });
    const renewedSerial = new X509Certificate(renewed.cert).serialNumber;
    expect(renewedSerial).not.toBe(before.serial);

    // Half-way through a rotation: new certificate, old key. Refused; the old pair keeps serving.
    writeFileSync(join(dir, 'tls.crt'), renewed.cert);
    expect(server.reloadCertificate()).toBe(false);
    expect((await call('/livez', undefined, { method: 'GET' })).serial).toBe(before.serial);

    writeFileSync(join(dir, 'tls.key'), renewed.key);
    server.reloadCertificate();
    const after = await call('/livez', undefined, { method: 'GET' });
    expect(after.status).toBe(200);
    expect(after.serial).toBe(renewedSerial);
  });
});

describe('palisade webhook (command)', () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    child?.kill('SIGKILL');
  });

  it('starts from PALISADE_* variables, answers a review, and exits 0 on SIGTERM', async () => {
    const leaf = await ca.issue({ commonName: SERVICE_DNS, dnsNames: [SERVICE_DNS], usage: 'server' });
    const cdir = mkdtempSync(join(tmpdir(), 'palisade-webhook-cmd-'));
    writeFileSync(join(cdir, 'tls.crt'), leaf.cert);
    writeFileSync(join(cdir, 'tls.key'), leaf.key, { mode: 0o600 });
    const proc = spawn(process.execPath, [join(import.meta.dirname, '..', '..', 'bin', 'palisade.js'), 'webhook', '--host', '127.0.0.1', '--port', '0'], {
      env: { ...process.env, PALISADE_WEBHOOK_TLS_CERT: join(cdir, 'tls.crt'), PALISADE_WEBHOOK_TLS_KEY: join(cdir, 'tls.key'), PALISADE_INJECT_IMAGE: 'registry.example.com/palisade:cmd', PALISADE_INJECT_MODE: 'container', PALISADE_LOG_LEVEL: 'info', PALISADE_WEBHOOK_DRAIN_DELAY_MS: '4000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    let stderr = '';
    const port = await new Promise<number>((resolve, reject) => {
      proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
        stderr += d;
        const m = /"port":(\d+)[^\n]*"msg":"webhook listening"/.exec(stderr);
        if (m) resolve(Number(m[1]));
      });
      proc.on('exit', (code) => reject(new Error(`webhook exited ${code}: ${stderr}`)));
    });
    const p = pod({ labels: { 'palisade.dev/inject': 'enabled' } });
    const body = review(p);
    const reply = await call(INJECT_PATH, JSON.stringify(body), { port });
    expect(reply.status).toBe(200);
    const after = patched(p, reply.json['response']);
    // PALISADE_INJECT_MODE=container: the fallback sidecar, from the environment.
    expect(after['spec']['containers'].map((c: Obj) => c['name'])).toEqual(['orders', 'palisade']);
    expect(after['spec']['containers'][1].image).toBe('registry.example.com/palisade:cmd');
    expect(allProblems([after])).toEqual([]);
    // The log line names the decision, never the pod's spec.
    await new Promise((r) => setTimeout(r, 50));
    expect(stderr).toContain('"decision":"injected"');
    expect(stderr).not.toContain('registry.example.com/orders');

    // SIGTERM: /readyz fails at once, reviews are still answered during the drain, then exit 0.
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (c) => resolve(c)));
    proc.kill('SIGTERM');
    let ready = 200;
    for (let i = 0; i < 100 && ready === 200; i++) ready = (await call('/readyz', undefined, { method: 'GET', port })).status;
    expect(ready).toBe(503);
    const during = await call(INJECT_PATH, JSON.stringify(review(p)), { port });
    expect(during.status).toBe(200);
    expect(during.json['response']['allowed']).toBe(true);
    expect(await exited).toBe(0);
    child = undefined;
    rmSync(cdir, { recursive: true, force: true });
  });

  it('refuses to start with invalid settings, naming the variable (a failure, exit 1; 2 is for a wrong command line)', async () => {
    const proc = spawn(process.execPath, [join(import.meta.dirname, '..', '..', 'bin', 'palisade.js'), 'webhook'], {
      env: { ...process.env, PALISADE_INJECT_MODE: 'sideways' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => proc.on('exit', resolve));
    expect(code).toBe(1);
    expect(stderr).toContain('PALISADE_INJECT_MODE: must be one of "native", "container"');
  });
});
