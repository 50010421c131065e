/**
 * `palisade inject` on every workload kind, against golden files
 * (test/deploy/golden/inject; regenerate with UPDATE_GOLDEN=1 after a
 * deliberate change, and review the diff). Every output must also be valid for
 * Kubernetes 1.29 and 1.37, and injecting it again must change nothing.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { InjectError } from '../../src/deploy/inject/errors.ts';
import { injectManifest } from '../../src/deploy/inject/manifest.ts';
import { resolveInjectOptions, type InjectOptionName } from '../../src/deploy/inject/options.ts';
import { allProblems } from './helpers/k8s-validate.ts';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'inject');
const GOLDEN = join(import.meta.dirname, 'golden', 'inject');

type Obj = Record<string, any>;

interface Case {
  readonly input: string;
  readonly golden: string;
  readonly options?: Partial<Record<InjectOptionName, unknown>>;
}

const CASES: Record<string, Case> = {
  deployment: { input: 'deployment.yaml', golden: 'deployment.yaml' },
  statefulset: { input: 'statefulset.yaml', golden: 'statefulset.yaml' },
  daemonset: { input: 'daemonset.yaml', golden: 'daemonset.yaml' },
  pod: { input: 'pod.yaml', golden: 'pod.yaml' },
  'job and cronjob': { input: 'jobs.yaml', golden: 'jobs.yaml' },
  'multi-document with a List': { input: 'multi.yaml', golden: 'multi.yaml' },
  'fallback (plain container) mode': { input: 'fallback.yaml', golden: 'fallback.yaml', options: { mode: 'container' } },
  'annotations override defaults': { input: 'annotations.yaml', golden: 'annotations.yaml' },
  'SPIFFE CSI certificates': { input: 'spiffe.yaml', golden: 'spiffe.yaml', options: { certSource: 'spiffe', image: 'registry.example.com/palisade@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef' } },
  'JSON input': { input: 'deployment.json', golden: 'deployment.json' },
};

function run(c: Case, text = readFileSync(join(FIXTURES, c.input), 'utf8')) {
  return injectManifest(text, resolveInjectOptions(c.options ?? {}), { source: c.input });
}

function objects(text: string): Obj[] {
  if (text.trimStart().startsWith('{')) return [JSON.parse(text) as Obj];
  const out: Obj[] = [];
  for (const d of parseAllDocuments(text) as ReturnType<typeof parseAllDocuments> & unknown[]) {
    const o = d.toJS() as Obj | null;
    if (o === null) continue;
    if (o['kind'] === 'List') out.push(...(o['items'] as Obj[]));
    else out.push(o);
  }
  return out;
}

function byName(objs: Obj[], kind: string, name: string): Obj {
  const o = objs.find((x) => x['kind'] === kind && x['metadata']?.['name'] === name);
  if (!o) throw new Error(`${kind} ${name} not in output`);
  return o;
}

function podSpec(o: Obj): Obj {
  if (o['kind'] === 'Pod') return o['spec'];
  if (o['kind'] === 'CronJob') return o['spec']['jobTemplate']['spec']['template']['spec'];
  return o['spec']['template']['spec'];
}

describe('palisade inject: golden files', () => {
  for (const [name, c] of Object.entries(CASES)) {
    describe(name, () => {
      const result = run(c);
      const goldenPath = join(GOLDEN, c.golden);

      it('matches the golden file', () => {
        if (process.env['UPDATE_GOLDEN'] === '1' || !existsSync(goldenPath)) writeFileSync(goldenPath, result.output);
        expect(result.output).toBe(readFileSync(goldenPath, 'utf8'));
      });

      it('is idempotent: injecting the output again changes nothing', () => {
        const again = run(c, result.output);
        expect(again.output).toBe(result.output);
        const thrice = run(c, again.output);
        expect(thrice.output).toBe(result.output);
      });

      it('validates against the Kubernetes 1.29 and 1.37 schemas', () => {
        expect(allProblems(objects(result.output))).toEqual([]);
      });
    });
  }
});

describe('palisade inject: what the sidecar looks like', () => {
  it('native mode: an init container with restartPolicy Always, first, hardened, probed on the admin port', () => {
    const out = objects(run(CASES['deployment']!).output);
    const spec = podSpec(byName(out, 'Deployment', 'orders'));
    const sidecar = spec['initContainers'][0];
    expect(sidecar.name).toBe('palisade');
    expect(sidecar.restartPolicy).toBe('Always');
    expect(spec['containers'].map((c: Obj) => c['name'])).toEqual(['orders']);
    expect(sidecar.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      privileged: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    for (const p of ['startupProbe', 'readinessProbe', 'livenessProbe']) expect(sidecar[p].httpGet.port).toBe(9901);
    expect(sidecar.resources).toEqual({ requests: { cpu: '100m', memory: '160Mi' }, limits: { cpu: '1', memory: '256Mi' } });
    const env = Object.fromEntries(sidecar.env.map((e: Obj) => [e['name'], e['value']]));
    expect(env['PALISADE_UPSTREAM']).toBe('http://127.0.0.1:8080');
    expect(env['PALISADE_LISTEN_PORT']).toBe('8443');
    expect(env['PALISADE_POLICY']).toBe('/etc/palisade/policy/policy.yaml');
    // Below the emptyDir's sizeLimit (256Mi), or kubelet would evict the pod when the spool fills.
    expect(Number(env['PALISADE_SPOOL_MAX_BYTES'])).toBe(Math.floor(256 * 2 ** 20 * 0.8));
    expect(env['PALISADE_KAFKA_CREATE_TOPICS']).toBe('false');
    // The policy is mounted as a directory (no subPath), or hot reload would never see an edit.
    const policyMount = sidecar.volumeMounts.find((m: Obj) => m['name'] === 'palisade-policy');
    expect(policyMount).toEqual({ name: 'palisade-policy', mountPath: '/etc/palisade/policy', readOnly: true });
    const volumes = Object.fromEntries(spec['volumes'].map((v: Obj) => [v['name'], v]));
    expect(volumes['palisade-policy'].configMap).toEqual({ name: 'palisade-policy' });
    expect(volumes['palisade-tls'].csi.driver).toBe('csi.cert-manager.io');
    expect(volumes['palisade-spool'].emptyDir.sizeLimit).toBe('256Mi');
  });

  it('points the Service at the sidecar and remembers the original target', () => {
    const out = objects(run(CASES['deployment']!).output);
    const svc = byName(out, 'Service', 'orders');
    expect(svc['spec']['ports']).toEqual([
      { name: 'http', port: 80, targetPort: 8443 },
      // Only the port the sidecar fronts moves; metrics stays on the app.
      { name: 'metrics', port: 9090, targetPort: 'metrics' },
    ]);
    expect(JSON.parse(svc['metadata']['annotations']['palisade.dev/original-target-ports'])).toEqual({ http: 'http' });
  });

  it('keeps comments and untouched formatting of the input', () => {
    const text = run(CASES['deployment']!).output;
    expect(text).toContain('# Orders API, as its team wrote it.');
    expect(text).toContain('namespace: shop # the shop namespace');
    expect(text).toContain('# Callers use port 80');
    expect(text).toContain('- name: orders # the app itself');
    expect(text).toContain('value: "orders-db"');
  });

  it('fallback mode: a plain container after the app, kubectl defaults to the app', () => {
    const out = objects(run(CASES['fallback (plain container) mode']!).output);
    const d = byName(out, 'Deployment', 'billing');
    const spec = podSpec(d);
    expect(spec['initContainers']).toBeUndefined();
    expect(spec['containers'].map((c: Obj) => c['name'])).toEqual(['billing', 'palisade']);
    expect(spec['containers'][1].restartPolicy).toBeUndefined();
    expect(d['spec']['template']['metadata']['annotations']).toMatchObject({ 'palisade.dev/injected': 'container', 'kubectl.kubernetes.io/default-container': 'billing' });
  });

  it('switching mode re-renders the sidecar in place (no second copy)', () => {
    const container = run(CASES['fallback (plain container) mode']!).output;
    const nativeOut = injectManifest(container, resolveInjectOptions({ mode: 'native' }), { source: 'x' }).output;
    const spec = podSpec(byName(objects(nativeOut), 'Deployment', 'billing'));
    const names = [...(spec['initContainers'] ?? []), ...spec['containers']].map((c: Obj) => c['name']);
    expect(names.filter((n) => n === 'palisade')).toHaveLength(1);
    expect(spec['initContainers'][0].restartPolicy).toBe('Always');
  });

  it('annotations override policy, ports, upstream, resources, certificate and log level', () => {
    const out = objects(run(CASES['annotations override defaults']!).output);
    const spec = podSpec(byName(out, 'Deployment', 'payments'));
    const sidecar = spec['initContainers'][0];
    expect(sidecar.ports).toEqual([
      { name: 'palisade-tls', containerPort: 9443, protocol: 'TCP' },
      { name: 'palisade-admin', containerPort: 9902, protocol: 'TCP' },
    ]);
    expect(sidecar.resources).toEqual({ requests: { cpu: '250m', memory: '256Mi' }, limits: { cpu: '2', memory: '512Mi' } });
    const env = Object.fromEntries(sidecar.env.map((e: Obj) => [e['name'], e['value']]));
    expect(env['PALISADE_UPSTREAM']).toBe('http://127.0.0.1:8090');
    expect(env['PALISADE_LOG_LEVEL']).toBe('debug');
    expect(sidecar.readinessProbe.httpGet.port).toBe(9902);
    const volumes = Object.fromEntries(spec['volumes'].map((v: Obj) => [v['name'], v]));
    expect(volumes['palisade-policy'].configMap.name).toBe('payments-policy');
    expect(volumes['palisade-tls']).toEqual({ name: 'palisade-tls', secret: { secretName: 'payments-mtls' } });
    // The Service port aimed at the upstream (by name) moves; the other stays.
    const svc = byName(out, 'Service', 'payments');
    expect(svc['spec']['ports']).toEqual([{ name: 'api', port: 443, targetPort: 9443 }, { name: 'ui', port: 8000 }]);
  });

  it('multi-document: workloads injected, opted-out and non-workload objects untouched, List items injected', () => {
    const r = run(CASES['multi-document with a List']!);
    const out = objects(r.output);
    const input = objects(readFileSync(join(FIXTURES, 'multi.yaml'), 'utf8'));
    expect(byName(out, 'ConfigMap', 'catalog-config')).toEqual(byName(input, 'ConfigMap', 'catalog-config'));
    expect(byName(out, 'Deployment', 'legacy')).toEqual(byName(input, 'Deployment', 'legacy'));
    expect(byName(out, 'Service', 'legacy')).toEqual(byName(input, 'Service', 'legacy'));
    expect(byName(out, 'Ingress', 'catalog')).toEqual(byName(input, 'Ingress', 'catalog'));
    expect(podSpec(byName(out, 'Pod', 'catalog-canary'))['initContainers'][0].name).toBe('palisade');
    expect(byName(out, 'Service', 'catalog')['spec']['ports'][0].targetPort).toBe(8443);
    expect(r.reports).toEqual(expect.arrayContaining([
      { object: 'Deployment catalog', status: 'injected' },
      { object: 'Deployment legacy', status: 'skipped', reason: 'palisade.dev/inject is "disabled"' },
      { object: 'Service catalog', status: 'service-rewired' },
      { object: 'Pod catalog-canary', status: 'injected' },
    ]));
  });

  it('headless Service with an implicit target port is rewired too', () => {
    const out = objects(run(CASES['statefulset']!).output);
    expect(byName(out, 'Service', 'ledger')['spec']['ports']).toEqual([{ port: 7000, targetPort: 8443 }]);
    expect(byName(out, 'Service', 'ledger')['metadata']['annotations']['palisade.dev/original-target-ports']).toBe('{"7000":null}');
  });

  it('YAML anchors: kept where untouched; a template sharing an anchor with the Deployment is rendered apart, never polluting the Deployment', () => {
    const shared = `apiVersion: apps/v1
kind: Deployment
metadata: &meta
  name: a
  labels:
    app: a
spec:
  selector:
    matchLabels: &labels
      app: a
  template:
    metadata: *meta
    spec:
      containers:
        - name: a
          image: a:1
          ports: [{containerPort: 8080}]
`;
    const out = injectManifest(shared, resolveInjectOptions({}), { source: 'x' }).output;
    const d = objects(out)[0]!;
    expect(d['metadata']).toEqual({ name: 'a', labels: { app: 'a' } });
    expect(d['spec']['template']['metadata']['annotations']).toEqual({ 'palisade.dev/injected': 'native' });
    expect(injectManifest(out, resolveInjectOptions({}), { source: 'x' }).output).toBe(out);
    expect(allProblems([d])).toEqual([]);

    const labelsOnly = shared.replace('metadata: &meta', 'metadata:').replace('    metadata: *meta', '    metadata:\n      labels: *labels');
    const kept = injectManifest(labelsOnly, resolveInjectOptions({}), { source: 'x' }).output;
    expect(kept).toContain('labels: *labels');
    expect(objects(kept)[0]!['spec']['template']['spec']['initContainers'][0].name).toBe('palisade');
  });

  it('a changed listen port follows through to the Service on re-injection', () => {
    const first = run(CASES['deployment']!).output;
    const second = injectManifest(first, resolveInjectOptions({ listenPort: 10443 }), { source: 'x' }).output;
    const out = objects(second);
    expect(byName(out, 'Service', 'orders')['spec']['ports'][0].targetPort).toBe(10443);
    expect(JSON.parse(byName(out, 'Service', 'orders')['metadata']['annotations']['palisade.dev/original-target-ports'])).toEqual({ http: 'http' });
    expect(podSpec(byName(out, 'Deployment', 'orders'))['initContainers'][0].ports[0].containerPort).toBe(10443);
  });
});

describe('palisade inject: hostile input fails clearly and produces nothing', () => {
  const opts = resolveInjectOptions({});
  const deployment = (podPatch: string, templateMeta = '') => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  selector:
    matchLabels: {app: x}
  template:
    metadata:
      labels: {app: x}
${templateMeta}    spec:
${podPatch}`;
  const app = `      containers:
        - name: app
          image: app:1
          ports:
            - containerPort: 8080
`;

  const HOSTILE: [string, string, string, RegExp][] = [
    ['invalid YAML', 'apiVersion: v1\nkind: Pod\nmetadata: {name: [unclosed\n', 'INJECT_YAML_INVALID', /document 1: invalid YAML/],
    ['a duplicate key', 'apiVersion: v1\nkind: Pod\nkind: Pod\n', 'INJECT_YAML_INVALID', /unique/i],
    ['invalid JSON', '{"apiVersion": "v1", "kind": ', 'INJECT_YAML_INVALID', /invalid JSON/],
    ['a scalar document', 'just a string\n', 'INJECT_NOT_AN_OBJECT', /not a Kubernetes object/],
    ['a document without kind', 'apiVersion: v1\nmetadata: {name: x}\n', 'INJECT_NOT_AN_OBJECT', /missing kind/],
    ['an unknown kind', 'apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata: {name: r}\nspec: {}\n', 'INJECT_KIND_UNSUPPORTED', /unsupported kind Rollout \(argoproj.io\/v1alpha1\).*--skip-unknown-kinds/],
    ['a workload kind with an old apiVersion', 'apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: d}\nspec: {}\n', 'INJECT_KIND_UNSUPPORTED', /expected apps\/v1/],
    ['a workload without a pod template', 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec: {replicas: 1}\n', 'INJECT_NOT_AN_OBJECT', /spec.template.spec is missing/],
    ['a container already named palisade', deployment(`${app}        - name: palisade\n          image: someone-elses:1\n`), 'INJECT_NAME_CONFLICT', /already has a container named "palisade" that palisade did not inject/],
    ['a volume with a name the sidecar needs', deployment(`${app}      volumes:\n        - name: palisade-tls\n          emptyDir: {}\n`), 'INJECT_NAME_CONFLICT', /"palisade-tls"/],
    ['an app on the sidecar port', deployment(app.replace('8080', '8443')), 'INJECT_PORT_CONFLICT', /port 8443, which is the sidecar's listen port; set annotation palisade.dev\/listen-port/],
    ['a sidecar on the upstream port', deployment(app, '      annotations:\n        palisade.dev/upstream-port: "9901"\n'), 'INJECT_PORT_CONFLICT', /admin port/],
    ['a bad port annotation', deployment(app, '      annotations:\n        palisade.dev/listen-port: "99999"\n'), 'INJECT_ANNOTATION_INVALID', /palisade.dev\/listen-port: "99999" must be a port number/],
    ['a non-string annotation', deployment(app, '      annotations:\n        palisade.dev/admin-port: 9000\n'), 'INJECT_ANNOTATION_INVALID', /must be a string/],
    ['a bad quantity', deployment(app, '      annotations:\n        palisade.dev/memory-limit: lots\n'), 'INJECT_ANNOTATION_INVALID', /Kubernetes quantity/],
    ['a request above its limit', deployment(app, '      annotations:\n        palisade.dev/cpu-request: "3"\n'), 'INJECT_ANNOTATION_INVALID', /CPU request 3 is above its limit 1/],
    ['a bad policy name', deployment(app, '      annotations:\n        palisade.dev/policy: Bad_Name\n'), 'INJECT_ANNOTATION_INVALID', /DNS-1123/],
    ['a hostNetwork pod', deployment(`      hostNetwork: true\n${app}`), 'INJECT_POD_UNSUPPORTED', /hostNetwork/],
    ['an app without ports', deployment('      containers:\n        - name: app\n          image: app:1\n'), 'INJECT_UPSTREAM_UNKNOWN', /add annotation palisade.dev\/upstream-port/],
    ['a pod without containers', deployment('      containers: []\n'), 'INJECT_NOT_AN_OBJECT', /spec.containers is empty/],
    ['an alias bomb', `a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\napiVersion: v1\nkind: Pod\n`, 'INJECT_YAML_INVALID', /alias/i],
  ];
  for (const [what, text, code, message] of HOSTILE) {
    it(`${what}: ${code}`, () => {
      let err: unknown;
      try {
        injectManifest(text, opts, { source: 'input.yaml' });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InjectError);
      expect((err as InjectError).code).toBe(code);
      expect((err as InjectError).message).toMatch(message);
      expect((err as InjectError).message).toMatch(/^input\.yaml/);
    });
  }

  it('a Job in fallback mode is refused (a plain sidecar would keep it running forever)', () => {
    const text = readFileSync(join(FIXTURES, 'jobs.yaml'), 'utf8');
    expect(() => injectManifest(text, resolveInjectOptions({ mode: 'container' }), { source: 'jobs.yaml' })).toThrow(/Job would never complete; use --mode native/);
  });

  it('an error in a later document fails the whole input', () => {
    const good = readFileSync(join(FIXTURES, 'pod.yaml'), 'utf8');
    expect(() => injectManifest(`${good}---\napiVersion: v1\nkind: Mystery\n`, opts, { source: 'two.yaml' })).toThrow(/two.yaml: document 2 \(Mystery \(unnamed\)\): unsupported kind Mystery/);
  });

  it('empty documents, header comments and unchanged documents come through byte for byte', () => {
    const configMap = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}   # keep me\ndata: {a: "1"}\n';
    const text = `# License header\n---\n${readFileSync(join(FIXTURES, 'pod.yaml'), 'utf8')}---\n${configMap}---\n---\n`;
    const out = injectManifest(text, opts, { source: 'edge.yaml' }).output;
    expect(out.startsWith('# License header\n---\napiVersion: v1\nkind: Pod\n')).toBe(true);
    expect(out.endsWith(`---\n${configMap}---\n---\n`)).toBe(true);
    expect(objects(out).map((o) => o['kind'])).toEqual(['Pod', 'ConfigMap']);
    expect(injectManifest(out, opts, { source: 'edge.yaml' }).output).toBe(out);
    expect(injectManifest('---\n', opts, { source: 'empty.yaml' }).output).toBe('---\n');
  });

  it('document numbers in messages count empty documents', () => {
    expect(() => injectManifest('---\n---\napiVersion: v1\nkind: Mystery\n', opts, { source: 'e.yaml' })).toThrow(/e.yaml: document 2 /);
  });

  it('input over the size bound is refused before parsing', () => {
    expect(() => injectManifest(`# ${'x'.repeat(16 * 1024 * 1024)}\n`, opts, { source: 'big.yaml' })).toThrow(expect.objectContaining({ code: 'INJECT_INPUT_TOO_LARGE' }));
  });

  it('--skip-unknown-kinds passes unknown kinds through unchanged', () => {
    const text = 'apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: r\nspec: {}\n';
    const r = injectManifest(text, opts, { source: 'x', skipUnknownKinds: true });
    expect(r.output).toBe(text);
  });

  it('invalid options are refused with the flag name', () => {
    expect(() => resolveInjectOptions({ mode: 'sidecar' })).toThrow(/--mode: must be one of "native", "container"/);
    expect(() => resolveInjectOptions({ listenPort: '70000' })).toThrow(/--listen-port/);
    expect(() => resolveInjectOptions({ listenPort: 9901 })).toThrow(/--listen-port and --admin-port are both 9901/);
    expect(() => resolveInjectOptions({ spoolSize: '100k' })).toThrow(/--spool-size 100k is below 1Mi/);
  });
});
