/**
 * Lints deploy/Dockerfile for the rules the image promises (hadolint is not
 * packaged here, and these are project rules besides): every base pinned by
 * digest, a distroless non-root final stage with no shell use, production
 * dependencies only, an allow-list build context. The lint is checked against
 * bad Dockerfiles too, so a rule that silently passes everything is caught.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { INJECT_OPTIONS } from '../../src/deploy/inject/options.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const DOCKERFILE = join(ROOT, 'deploy', 'Dockerfile');

interface Instruction {
  readonly op: string;
  readonly args: string;
  readonly line: number;
}

interface Stage {
  readonly image: string;
  readonly name: string | undefined;
  readonly instructions: Instruction[];
}

/** Instructions with continuation lines joined; comments and parser directives dropped. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    while (/\\\s*$/.test(line) && i + 1 < lines.length) {
      i++;
      const next = lines[i]!;
      if (/^\s*#/.test(next)) continue;
      line = line.replace(/\\\s*$/, ' ') + next.trim();
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`line ${start + 1}: cannot parse ${JSON.stringify(line)}`);
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start + 1 });
  }
  return out;
}

function stagesOf(instructions: Instruction[]): Stage[] {
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.op === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`line ${ins.line}: bad FROM`);
      stages.push({ image: m[1]!, name: m[2], instructions: [] });
    } else if (stages.length > 0) {
      stages.at(-1)!.instructions.push(ins);
    } else if (ins.op !== 'ARG') {
      throw new Error(`line ${ins.line}: ${ins.op} before FROM`);
    }
  }
  return stages;
}

function execForm(args: string): string[] | undefined {
  try {
    const v = JSON.parse(args) as unknown;
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Source paths of COPY instructions from the build context (not --from). */
function contextSources(instrs: readonly Instruction[]): string[] {
  return instrs.filter((c) => c.op === 'COPY' && !/--from=/.test(c.args)).flatMap((c) => c.args.split(/\s+/).filter((p) => !p.startsWith('--')).slice(0, -1));
}

const RUNTIME_FILES = ['package.json', 'package-lock.json', 'bin', 'src', 'detectors'];

/** Every rule broken by a Dockerfile, as "rule: detail" lines; [] when clean. */
function lint(text: string): string[] {
  const problems: string[] = [];
  const instrs = parseDockerfile(text);
  const stages = stagesOf(instrs);
  if (stages.length < 2) problems.push('multi-stage: build and runtime stages expected');
  const final = stages.at(-1)!;
  const names = new Set(stages.map((s) => s.name).filter(Boolean));
  const of = (s: Stage, op: string) => s.instructions.filter((i) => i.op === op);

  for (const s of stages) {
    if (names.has(s.image)) continue;
    if (!/^[a-z0-9.-]+(?::[0-9]+)?\/[a-z0-9._/-]+(?::[A-Za-z0-9._-]+)?@sha256:[0-9a-f]{64}$/.test(s.image)) problems.push(`pinned-digest: FROM ${s.image}`);
  }
  for (const s of stages.slice(0, -1)) if (!names.has(s.image) && !/^cgr\.dev\/chainguard\/node:[^@]*-dev@/.test(s.image)) problems.push(`base: build stage ${s.image} is not cgr.dev/chainguard/node:*-dev`);
  if (!/^cgr\.dev\/chainguard\/node(:[^@]*)?@/.test(final.image) || /-dev[:@]/.test(final.image)) problems.push(`base: final stage ${final.image} is not the distroless cgr.dev/chainguard/node`);

  for (const op of ['RUN', 'SHELL', 'HEALTHCHECK']) for (const i of of(final, op)) problems.push(`no-shell: ${op} in the final stage (line ${i.line})`);
  for (const op of ['ENTRYPOINT', 'CMD']) {
    const ins = of(final, op).at(-1);
    if (!ins) {
      problems.push(`no-shell: final stage has no ${op}`);
      continue;
    }
    const argv = execForm(ins.args);
    if (!argv) problems.push(`no-shell: ${op} in shell form (line ${ins.line})`);
    else if (/(^|\/)(sh|bash|ash|dash)(\s|$)|\s-c(\s|$)/.test(argv.join(' '))) problems.push(`no-shell: ${op} runs a shell`);
  }

  const user = of(final, 'USER').at(-1);
  const um = user && /^(\d+)(?::(\d+))?$/.exec(user.args);
  if (!user) problems.push('non-root: final stage sets no USER');
  else if (!um) problems.push(`non-root: USER ${user.args} is not numeric uid[:gid]`);
  else if (Number(um[1]) === 0 || (um[2] !== undefined && Number(um[2]) === 0)) problems.push(`non-root: USER ${user.args} is root`);

  const installs = stages.flatMap((s) => of(s, 'RUN')).filter((r) => /\bnpm\s+(ci|install|i)\b/.test(r.args));
  if (installs.length === 0) problems.push('prod-deps: no npm ci');
  for (const r of installs) {
    if (!/\bnpm\s+ci\b/.test(r.args)) problems.push(`prod-deps: npm install instead of npm ci (line ${r.line})`);
    if (!/--omit=dev\b/.test(r.args)) problems.push(`prod-deps: npm without --omit=dev (line ${r.line})`);
    if (!/--ignore-scripts\b/.test(r.args)) problems.push(`prod-deps: npm without --ignore-scripts (line ${r.line})`);
  }
  for (const c of of(final, 'COPY').filter((x) => /--from=/.test(x.args))) {
    const from = /--from=(\S+)/.exec(c.args)![1]!;
    const stage = stages.find((s) => s.name === from);
    if (!stage || !of(stage, 'RUN').some((r) => /npm\s+ci\b.*--omit=dev/.test(r.args))) problems.push(`prod-deps: final stage copies from ${from}, which did not run npm ci --omit=dev`);
  }

  const sources = contextSources(final.instructions);
  for (const s of sources) if (!RUNTIME_FILES.includes(s)) problems.push(`allow-list: final stage copies ${s}`);
  for (const i of instrs.filter((x) => x.op === 'ADD')) problems.push(`no-add: ADD on line ${i.line}; use COPY`);
  for (const i of instrs.filter((x) => x.op === 'ENV' || x.op === 'ARG')) if (/(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|PRIVATE_?KEY)/i.test(i.args)) problems.push(`no-secrets: ${i.op} on line ${i.line}`);
  return problems;
}

function ignoreRules(file: string): string[] {
  return readFileSync(file, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

const text = readFileSync(DOCKERFILE, 'utf8');
const stages = stagesOf(parseDockerfile(text));
const final = stages.at(-1)!;

describe('deploy/Dockerfile', () => {
  it('passes every rule: pinned digests, Chainguard bases, no shell, non-root, prod deps, allow-list', () => {
    expect(lint(text)).toEqual([]);
  });

  it('starts the CLI, whose default command exists', () => {
    const entry = execForm(final.instructions.filter((i) => i.op === 'ENTRYPOINT').at(-1)!.args)!;
    expect(entry[0]).toBe('/usr/bin/node');
    expect(existsSync(join(ROOT, entry[1]!.replace(/^\/app\//, '')))).toBe(true);
    const cmd = execForm(final.instructions.filter((i) => i.op === 'CMD').at(-1)!.args)!;
    expect(readFileSync(join(ROOT, 'src', 'cli', 'main.ts'), 'utf8')).toMatch(new RegExp(`\\b${cmd[0]}:`));
    for (const s of contextSources(final.instructions)) expect(existsSync(join(ROOT, s)), s).toBe(true);
  });

  it('keeps the runtime and test tooling in devDependencies (left out by --omit=dev)', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    for (const dev of ['node', 'vitest', 'typescript']) {
      expect(pkg.devDependencies).toHaveProperty(dev);
      expect(pkg.dependencies).not.toHaveProperty(dev);
    }
  });

  it('exposes the ports the injector wires', () => {
    const exposed = final.instructions.filter((i) => i.op === 'EXPOSE').flatMap((e) => e.args.split(/\s+/)).map((p) => Number(p.split('/')[0]));
    expect(exposed).toEqual(expect.arrayContaining([INJECT_OPTIONS.listenPort.default, INJECT_OPTIONS.adminPort.default]));
  });

  it('documents how to update the pinned digests', () => {
    expect(text).toContain('crane digest cgr.dev/chainguard/node:latest-dev');
    expect(text).toContain('crane digest cgr.dev/chainguard/node:latest');
  });
});

describe('build context (.dockerignore)', () => {
  const perDockerfile = ignoreRules(join(ROOT, 'deploy', 'Dockerfile.dockerignore'));

  it('is an allow-list: ignore everything, re-include exactly what the image copies', () => {
    expect(perDockerfile[0]).toBe('*');
    const allowed = perDockerfile.filter((r) => r.startsWith('!')).map((r) => r.slice(1).replace(/\/$/, ''));
    const copied = stages.flatMap((s) => contextSources(s.instructions));
    expect(new Set(allowed)).toEqual(new Set(copied));
  });

  it('the repository-root copy says the same', () => {
    expect(ignoreRules(join(ROOT, '.dockerignore'))).toEqual(perDockerfile);
  });
});

describe('the lint catches what it should', () => {
  const digest = 'sha256:' + 'a'.repeat(64);
  const good = `FROM cgr.dev/chainguard/node:latest-dev@${digest} AS deps\nRUN npm ci --omit=dev --ignore-scripts\nFROM cgr.dev/chainguard/node:latest@${digest}\nCOPY --from=deps /app/node_modules ./node_modules\nCOPY src ./src\nUSER 65532:65532\nENTRYPOINT ["/usr/bin/node", "/app/bin/palisade.js"]\nCMD ["sidecar"]\n`;
  const BAD: [string, string, RegExp][] = [
    ['a tag without digest', good.replace(`:latest@${digest}`, ':latest'), /^pinned-digest:/],
    ['a -dev runtime stage', good.replace(`node:latest@${digest}`, `node:latest-dev@${digest}`), /^base: final stage/],
    ['another base image', good.replace(`cgr.dev/chainguard/node:latest@`, 'docker.io/library/node:24@'), /^base: final stage/],
    ['a RUN in the final stage', good.replace('USER 65532', 'RUN chmod -R 755 /app \\\n  && true\nUSER 65532'), /^no-shell: RUN in the final stage/],
    ['a shell-form CMD', good.replace('CMD ["sidecar"]', 'CMD node bin/palisade.js sidecar'), /^no-shell: CMD in shell form/],
    ['an ENTRYPOINT through sh -c', good.replace('ENTRYPOINT ["/usr/bin/node", "/app/bin/palisade.js"]', 'ENTRYPOINT ["/bin/sh", "-c", "node /app/bin/palisade.js"]'), /^no-shell: ENTRYPOINT runs a shell/],
    ['a named user', good.replace('USER 65532:65532', 'USER node'), /^non-root: USER node is not numeric/],
    ['root', good.replace('USER 65532:65532', 'USER 0'), /^non-root: USER 0 is root/],
    ['no USER', good.replace('USER 65532:65532\n', ''), /^non-root: final stage sets no USER/],
    ['dev dependencies', good.replace('npm ci --omit=dev', 'npm ci'), /^prod-deps: npm without --omit=dev/],
    ['npm install', good.replace('npm ci', 'npm install'), /^prod-deps: npm install instead of npm ci/],
    ['the whole context', good.replace('COPY src ./src', 'COPY . .'), /^allow-list: final stage copies \./],
    ['ADD', good.replace('COPY src ./src', 'ADD https://example.com/x.tgz /app/'), /^no-add:/],
    ['a secret in ENV', good.replace('USER 65532', 'ENV NPM_TOKEN=abc\nUSER 65532'), /^no-secrets:/],
  ];
  it('accepts the good example', () => expect(lint(good)).toEqual([]));
  for (const [what, bad, rule] of BAD) {
    it(`flags ${what}`, () => {
      const problems = lint(bad);
      expect(problems.some((p) => rule.test(p)), problems.join('\n')).toBe(true);
    });
  }
});
