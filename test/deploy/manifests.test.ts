/**
 * The Kubernetes manifests in deploy/k8s: every file and every Kustomize build
 * is valid for Kubernetes 1.29 and 1.37, and the pieces fit together (Services
 * reach real ports, budgets and policies select real pods, the webhook
 * configuration points at the webhook, settings in env parse, the policy in
 * Git passes `palisade policy check`). Builds use `kubectl kustomize` (offline).
 */
import { parsePublicKeys, verifyBlob } from '../../src/policy/signature.ts';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { loadWebhookSettings } from '../../src/config/webhook-settings.ts';
import { injectManifest } from '../../src/deploy/inject/manifest.ts';
import { DEFAULT_IMAGE, injectOptionsFromEnv, resolveInjectOptions } from '../../src/deploy/inject/options.ts';
import { INJECT_PATH } from '../../src/deploy/webhook/server.ts';
import { parsePolicyText, validatePolicy } from '../../src/policy/load.ts';
import { DEFAULT_TOPICS, palisadeTopics } from '../../src/kafka/topics.ts';
import { allProblems } from './helpers/k8s-validate.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const K8S = join(ROOT, 'deploy', 'k8s');
type Obj = Record<string, any>;

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

function docs(text: string): Obj[] {
  return parseAllDocuments(text)
    .map((d) => {
      expect(d.errors).toEqual([]);
      return d.toJS() as Obj | null;
    })
    .filter((o): o is Obj => o !== null);
}

// NAME.test.yaml beside a policy holds `palisade policy test` samples, not Kubernetes objects.
const yamlFiles = walk(K8S).filter((f) => /\.ya?ml$/.test(f) && !/\.test\.ya?ml$/.test(f));
const isKustomization = (f: string) => /kustomization\.ya?ml$/.test(f);
const isPolicy = (o: Obj) => o['apiVersion'] === 'palisade.dev/v1';

// `kubectl kustomize` where kubectl exists, else the standalone `kustomize`
// that scripts/ensure-kustomize.sh installs (npm test runs it): never skipped.
const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
const kustomizeCmd: [string, string[]] = kubectl ? ['kubectl', ['kustomize']] : ['kustomize', ['build']];
const kustomizeDirs = yamlFiles.filter(isKustomization).map((f) => relative(K8S, dirname(f))).sort();

function build(dir: string): Obj[] {
  return docs(execFileSync(kustomizeCmd[0], [...kustomizeCmd[1], join(K8S, dir)], { encoding: 'utf8' }));
}

function containersOf(o: Obj): Obj[] {
  const spec = o['kind'] === 'Pod' ? o['spec'] : o['spec']?.['template']?.['spec'];
  return spec ? [...(spec['initContainers'] ?? []), ...spec['containers']] : [];
}

function podTemplate(o: Obj): Obj | undefined {
  return ['Deployment', 'StatefulSet', 'DaemonSet'].includes(o['kind']) ? o['spec']['template'] : undefined;
}

function find(objs: Obj[], kind: string, name: string): Obj {
  const o = objs.find((x) => x['kind'] === kind && x['metadata']['name'] === name);
  if (!o) throw new Error(`${kind} ${name} missing`);
  return o;
}

function env(container: Obj): Record<string, string> {
  return Object.fromEntries((container['env'] ?? []).map((e: Obj) => [e['name'], e['value']]));
}

describe('deploy/k8s files', () => {
  it('has the files the issue asks for', () => {
    const rel = yamlFiles.map((f) => relative(K8S, f));
    for (const f of ['base/kustomization.yaml', 'overlays/dev/kustomization.yaml', 'overlays/prod/kustomization.yaml', 'topics/topics.yaml', 'example/orders.injected.yaml', 'base/webhook/mutatingwebhookconfiguration.yaml']) expect(rel).toContain(f);
  });

  for (const file of yamlFiles.filter((f) => !isKustomization(f))) {
    it(`${relative(ROOT, file)} is valid`, () => {
      const objs = docs(readFileSync(file, 'utf8'));
      expect(objs.length).toBeGreaterThan(0);
      for (const o of objs.filter(isPolicy)) validatePolicy(o, file);
      expect(allProblems(objs.filter((o) => !isPolicy(o)))).toEqual([]);
    });
  }

  it('every path a kustomization names exists', () => {
    for (const k of yamlFiles.filter(isKustomization)) {
      const spec = docs(readFileSync(k, 'utf8'))[0]!;
      const paths: string[] = [...(spec['resources'] ?? []), ...(spec['components'] ?? [])];
      for (const g of spec['configMapGenerator'] ?? []) for (const f of g['files'] ?? []) paths.push(String(f).split('=').pop()!);
      for (const p of paths) expect(() => statSync(join(dirname(k), p)), `${relative(ROOT, k)} -> ${p}`).not.toThrow();
    }
  });

  it('every Palisade image reference is the release the package declares', () => {
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    expect(DEFAULT_IMAGE).toBe(`ghcr.io/palisade-dev/palisade:${version}`);
    const refs = yamlFiles.flatMap((f) => [...readFileSync(f, 'utf8').matchAll(/ghcr\.io\/palisade-dev\/palisade[:@](?!sha256:<)[^\s"']+/g)].map((m) => m[0]));
    expect(refs.length).toBeGreaterThan(3);
    for (const r of refs) expect(r).toBe(DEFAULT_IMAGE);
  });

  it('the example policy carries a signature by the example\'s trusted key (both overlays require one)', () => {
    const policyFile = join(K8S, 'example', 'policy', 'policy.yaml');
    const keys = parsePublicKeys(readFileSync(join(K8S, 'example', 'policy-keys', 'policy.pub'), 'utf8'), 'policy.pub');
    // Changed the example policy? Sign it again (docs/deploy.md, "Signed policies"): a new key pair,
    // palisade policy sign deploy/k8s/example/policy/policy.yaml --key KEY, its public key in policy-keys/policy.pub.
    expect(() => verifyBlob(readFileSync(policyFile), readFileSync(`${policyFile}.sig`, 'utf8'), keys, 'policy.yaml.sig')).not.toThrow();
  });

  it('the example workload is exactly `palisade inject` of its source', () => {
    const source = readFileSync(join(K8S, 'example', 'orders.yaml'), 'utf8');
    // As its header says: with the overlays' signed-policy options.
    const injected = injectManifest(source, resolveInjectOptions({ policyKeysConfigMap: 'palisade-policy-keys', requirePolicySignature: 'true' }), { source: 'orders.yaml' }).output;
    expect(readFileSync(join(K8S, 'example', 'orders.injected.yaml'), 'utf8')).toBe(injected);
  });
});

describe('deploy/k8s Kustomize builds (kubectl kustomize or kustomize build)', () => {
  for (const dir of kustomizeDirs) {
    it(`${dir} builds and validates`, () => {
      const objs = build(dir);
      expect(objs.length).toBeGreaterThan(0);
      expect(allProblems(objs)).toEqual([]);
    });
  }

  const dev = build('overlays/dev');
  const prod = build('overlays/prod');

  it('every Palisade container is hardened and bounded', () => {
    for (const o of [...dev, ...prod]) {
      for (const c of containersOf(o)) {
        if (!String(c['image']).includes('palisade')) continue;
        const sc = c['securityContext'] ?? {};
        expect(sc, `${o['metadata']['name']}/${c['name']}`).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } });
        expect(c['resources']?.['requests'], c['name']).toBeDefined();
        expect(c['resources']?.['limits']?.['memory'], c['name']).toBeDefined();
        expect(c['livenessProbe'] && c['readinessProbe'], c['name']).toBeTruthy();
      }
    }
  });

  it('every Service port reaches a declared container port of the pods it selects', () => {
    for (const objs of [dev, prod]) {
      for (const svc of objs.filter((o) => o['kind'] === 'Service')) {
        const pods = objs.map(podTemplate).filter((t): t is Obj => t !== undefined).filter((t) => Object.entries(svc['spec']['selector']).every(([k, v]) => t['metadata']['labels']?.[k] === v));
        expect(pods.length, `Service ${svc['metadata']['name']} selects nothing`).toBeGreaterThan(0);
        for (const p of svc['spec']['ports']) {
          const target = p['targetPort'] ?? p['port'];
          for (const t of pods) {
            const ports = [...(t['spec']['initContainers'] ?? []).filter((c: Obj) => c['restartPolicy'] === 'Always'), ...t['spec']['containers']].flatMap((c: Obj) => c['ports'] ?? []);
            expect(ports.some((cp: Obj) => cp['containerPort'] === target || cp['name'] === target), `Service ${svc['metadata']['name']} port ${p['port']} -> ${target}`).toBe(true);
          }
        }
      }
    }
  });

  it('PodDisruptionBudgets and NetworkPolicies select real pods in their namespace', () => {
    for (const objs of [dev, prod]) {
      for (const o of objs.filter((x) => x['kind'] === 'PodDisruptionBudget' || x['kind'] === 'NetworkPolicy')) {
        const selector = o['kind'] === 'NetworkPolicy' ? o['spec']['podSelector']['matchLabels'] : o['spec']['selector']['matchLabels'];
        const hits = objs.filter((w) => podTemplate(w) && w['metadata']['namespace'] === o['metadata']['namespace'] && Object.entries(selector).every(([k, v]) => podTemplate(w)!['metadata']['labels'][k] === v));
        expect(hits.length, `${o['kind']} ${o['metadata']['name']}`).toBeGreaterThan(0);
      }
    }
  });

  it('the app NetworkPolicy lets only the sidecar in, never the app port', () => {
    const np = find(dev, 'NetworkPolicy', 'orders-api-ingress');
    const rules = np['spec']['ingress'] as Obj[];
    const open = rules.flatMap((r) => (r['ports'] as Obj[]).map((p) => ({ port: p['port'], from: r['from'] })));
    expect(open).toEqual([
      { port: 8443, from: undefined },
      { port: 9901, from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }] },
    ]);
    const app = find(dev, 'Deployment', 'orders-api');
    const sidecar = app['spec']['template']['spec']['initContainers'][0];
    expect(sidecar['ports'].map((p: Obj) => p['containerPort'])).toEqual([8443, 9901]);
    expect(env(sidecar)['PALISADE_UPSTREAM']).toBe('http://127.0.0.1:8080');
    expect(find(dev, 'Service', 'orders-api')['spec']['ports'][0]['targetPort']).toBe(8443);
  });

  it('the webhook configuration points at the webhook and fails closed', () => {
    for (const objs of [dev, prod]) {
      const mwc = find(objs, 'MutatingWebhookConfiguration', 'palisade-sidecar-injector');
      const hook = mwc['webhooks'][0];
      const svc = find(objs, 'Service', hook['clientConfig']['service']['name']);
      expect(svc['metadata']['namespace']).toBe(hook['clientConfig']['service']['namespace']);
      expect(hook['clientConfig']['service']['path']).toBe(INJECT_PATH);
      expect(svc['spec']['ports'].map((p: Obj) => p['port'])).toContain(hook['clientConfig']['service']['port']);
      expect(hook).toMatchObject({ failurePolicy: 'Fail', sideEffects: 'None', admissionReviewVersions: ['v1'], rules: [{ operations: ['CREATE'], resources: ['pods'] }] });
      expect(hook['timeoutSeconds']).toBeLessThanOrEqual(10);
      // Never called for its own namespace (it could not start its own pods) or the system.
      const excluded = hook['namespaceSelector']['matchExpressions'].find((e: Obj) => e['key'] === 'kubernetes.io/metadata.name')['values'];
      expect(excluded).toEqual(expect.arrayContaining(['kube-system', 'palisade-system']));
      const expr = hook['matchConditions'][0]['expression'] as string;
      expect(expr).toContain("object.metadata.labels['palisade.dev/inject'] == 'enabled'");
      expect(expr).toContain("object.metadata.annotations['palisade.dev/inject'] == 'enabled'");
      expect(mwc['metadata']['annotations']['cert-manager.io/inject-ca-from']).toBe('palisade-system/palisade-webhook-tls');
      const cert = find(objs, 'Certificate', 'palisade-webhook-tls');
      expect(cert['spec']['dnsNames']).toContain(`${svc['metadata']['name']}.${svc['metadata']['namespace']}.svc`);
    }
  });

  it("the webhook's environment is valid configuration, and it injects the image it runs", () => {
    for (const objs of [dev, prod]) {
      const c = find(objs, 'Deployment', 'palisade-webhook')['spec']['template']['spec']['containers'][0];
      const e = env(c);
      const settings = loadWebhookSettings(e);
      expect(c['ports'][0]['containerPort']).toBe(settings.port);
      expect(c['volumeMounts'][0]['mountPath']).toBe(dirname(settings.tlsCert));
      const opts = injectOptionsFromEnv(e);
      expect(opts.image).toBe(c['image']);
    }
    const devWebhook = find(dev, 'Deployment', 'palisade-webhook');
    expect(devWebhook['spec']['replicas']).toBe(1);
    expect(env(devWebhook['spec']['template']['spec']['containers'][0])['PALISADE_LOG_LEVEL']).toBe('debug');
    expect(dev.some((o) => o['kind'] === 'PodDisruptionBudget' && o['metadata']['name'] === 'palisade-webhook')).toBe(false);
    expect(find(prod, 'Deployment', 'palisade-webhook')['spec']['replicas']).toBe(3);
    expect(injectOptionsFromEnv(env(find(prod, 'Deployment', 'palisade-webhook')['spec']['template']['spec']['containers'][0])).issuerName).toBe('corp-mesh-issuer');
  });

  it('bindings refer to roles that exist', () => {
    for (const objs of [dev, prod]) {
      for (const b of objs.filter((o) => o['kind'] === 'RoleBinding' || o['kind'] === 'ClusterRoleBinding')) {
        const ref = b['roleRef'];
        expect(objs.some((o) => o['kind'] === ref['kind'] && o['metadata']['name'] === ref['name']), `${b['metadata']['name']} -> ${ref['name']}`).toBe(true);
      }
    }
  });

  it('the policy ConfigMap keeps a stable name and holds a valid policy', () => {
    const cm = find(dev, 'ConfigMap', 'palisade-policy');
    expect(cm['metadata']['namespace']).toBe('shop');
    const { document } = validatePolicy(parsePolicyText(cm['data']['policy.yaml'], 'configmap'), 'configmap');
    expect(document.metadata.name).toBe('orders-api');
    const volumes = find(dev, 'Deployment', 'orders-api')['spec']['template']['spec']['volumes'];
    expect(volumes.find((v: Obj) => v['name'] === 'palisade-policy')['configMap']['name']).toBe(cm['metadata']['name']);
  });

  it('the topics are the ones the code creates, with its cleanup policies; dev fits one broker', () => {
    // What the processes create when they find a topic missing (src/kafka/topics.ts) is the
    // reference: a manifest that differs would be what a cluster with Strimzi really runs.
    const code = palisadeTopics({
      kafkaTopicDecisions: DEFAULT_TOPICS.decisions,
      kafkaTopicBlocklist: DEFAULT_TOPICS.blocklist,
      kafkaTopicAlerts: DEFAULT_TOPICS.alerts,
      kafkaTopicPartitions: 6,
      kafkaTopicReplication: 3,
      kafkaDecisionsRetentionMs: 604800000,
    });
    const topics = Object.fromEntries(prod.filter((o) => o['kind'] === 'KafkaTopic').map((t) => [t['metadata']['name'], t]));
    expect(Object.keys(topics).sort()).toEqual(Object.values(code).map((t) => t.name).sort());
    for (const t of Object.values(code)) {
      const m = topics[t.name]['spec'];
      expect(m['config']['cleanup.policy'], `${t.name}: cleanup.policy`).toBe(t.config['cleanup.policy']);
      if (t.config['retention.ms'] !== undefined) expect(m['config']['retention.ms'], `${t.name}: retention.ms`).toBe(t.config['retention.ms']);
      // Topics the code makes with one partition are read whole, in one order, by every sidecar.
      if (t.partitions === 1) expect(m['partitions'], `${t.name}: partitions`).toBe(1);
    }
    // Co-partitioned: the detector owning decisions partition p checkpoints into state partition p.
    expect(topics[DEFAULT_TOPICS.detectorState]['spec']['partitions']).toBe(topics[DEFAULT_TOPICS.decisions]['spec']['partitions']);
    for (const t of Object.values(topics)) expect((t as Obj)['metadata']['namespace']).toBe('kafka');
    for (const t of dev.filter((o) => o['kind'] === 'KafkaTopic')) {
      expect(t['spec']['replicas']).toBe(1);
      expect(t['spec']['config']['min.insync.replicas']).toBe('1');
    }
  });
});

describe('GitOps CI example', () => {
  const script = join(ROOT, 'deploy', 'ci', 'check-policies.sh');
  const palisade = `${process.execPath} ${join(ROOT, 'bin', 'palisade.js')}`;

  it('runs `palisade policy check` on every policy in the repository', () => {
    const r = spawnSync('bash', [script, join(ROOT, 'deploy')], { encoding: 'utf8', env: { ...process.env, PALISADE: palisade } });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('ok      ');
    expect(r.stdout).toContain('deploy/k8s/example/policy/policy.yaml');
  });

  it('fails, naming the file, when a policy is invalid, and still checks the others', () => {
    const dir = mkdtempSync(join(tmpdir(), 'palisade-ci-'));
    try {
      mkdirSync(join(dir, 'team-a'));
      writeFileSync(join(dir, 'team-a', 'good.yaml'), readFileSync(join(K8S, 'example', 'policy', 'policy.yaml')));
      writeFileSync(join(dir, 'team-a', 'bad.yaml'), 'apiVersion: palisade.dev/v1\nkind: Policy\nmetadata:\n  name: Bad Name\nspec:\n  mode: sometimes\n');
      writeFileSync(join(dir, 'unrelated.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n');
      const r = spawnSync('bash', [script, dir], { encoding: 'utf8', env: { ...process.env, PALISADE: palisade } });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`INVALID ${join(dir, 'team-a', 'bad.yaml')}`);
      expect(r.stdout).toContain(`ok      ${join(dir, 'team-a', 'good.yaml')}`);
      expect(r.stdout + r.stderr).not.toContain('unrelated.yaml');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the workflow example runs that script and builds the overlays', () => {
    const wf = docs(readFileSync(join(ROOT, 'deploy', 'ci', 'github-actions-policy.yaml'), 'utf8'))[0]!;
    const steps = Object.values(wf['jobs'] as Obj).flatMap((j: Obj) => j['steps'] as Obj[]);
    const runs = steps.map((s) => String(s['run'] ?? '')).join('\n');
    expect(runs).toContain('deploy/ci/check-policies.sh');
    expect(runs).toContain('kubectl kustomize');
    expect(runs).toContain('cosign verify');
  });
});
