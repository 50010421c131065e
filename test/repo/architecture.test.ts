/**
 * The layout's import rules (scripts/architecture.ts, dependency-cruiser): the real tree breaks
 * none, and a small tree that breaks each one is caught, naming the rule and the offending import.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { checkArchitecture } from '../../scripts/architecture.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const fixture = mkdtempSync(join(tmpdir(), 'palisade-arch-'));
afterAll(() => rmSync(fixture, { recursive: true, force: true }));

function tree(files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(fixture, path)), { recursive: true });
    writeFileSync(join(fixture, path), text);
  }
}

describe('architecture rules', () => {
  it('holds for this repository', async () => {
    expect(await checkArchitecture(root)).toEqual([]);
  });

  it('keeps the sidecar thin: no file under src/sidecar/ over 250 lines, server.ts well under 200', () => {
    const dir = join(root, 'src', 'sidecar');
    const long = readdirSync(dir)
      .filter((f) => f.endsWith('.ts'))
      .map((f) => ({ f, lines: readFileSync(join(dir, f), 'utf8').split('\n').length - 1 }))
      .filter(({ f, lines }) => lines > 250 || (f === 'server.ts' && lines >= 180));
    expect(long).toEqual([]);
  });

  it('names each broken rule and the import that breaks it', async () => {
    tree({
      // A runtime cycle (a <-> b: reported once), and a type-only one (c <-> d) that is allowed.
      'src/util/a.ts': "import { b } from './b.ts';\nexport const a = () => b;\n",
      'src/util/b.ts': "import { a } from './a.ts';\nexport const b = () => a;\n",
      'src/util/c.ts': "import type { D } from './d.ts';\nexport interface C { d: D }\nexport const c = 1;\n",
      'src/util/d.ts': "import type { C } from './c.ts';\nexport interface D { c: C }\nexport const d = 2;\n",
      // A stage that reaches up into the server and the registry.
      'src/sidecar/server.ts': 'export const server = 1;\n',
      'src/policy/stage-registry.ts': "import { build } from '../ratelimit/stage.ts';\nexport const STAGES = [build];\n",
      'src/ratelimit/stage.ts': "import { server } from '../sidecar/server.ts';\nimport type { STAGES } from '../policy/stage-registry.ts';\nexport const build = (s?: typeof STAGES) => server + (s ? 1 : 0);\n",
      // The pipeline importing a stage.
      'src/pipeline/types.ts': "import type { build } from '../ratelimit/stage.ts';\nexport type B = typeof build;\n",
      // The detector reading src/ through a module not meant for it, and through one that is.
      'src/decision/record.ts': 'export interface DecisionRecord { id: string }\n',
      'src/blocklist/store.ts': 'export const store = 1;\n',
      'detectors/engine.ts': "import type { DecisionRecord } from '../src/decision/record.ts';\nimport { server } from '../src/sidecar/server.ts';\nimport { store } from '../src/blocklist/store.ts';\nexport const f = (r: DecisionRecord) => r.id + server + store;\n",
      'detectors/embedded.ts': "import { store } from '../src/blocklist/store.ts';\nimport { server } from '../src/sidecar/server.ts';\nexport const e = store + server;\n",
    });
    const found = await checkArchitecture(fixture);
    expect(found).toEqual([
      'detector-imports-src: detectors/engine.ts imports src/blocklist/store.ts',
      'detector-imports-src: detectors/engine.ts imports src/sidecar/server.ts',
      'embedded-detector-imports-src: detectors/embedded.ts imports src/sidecar/server.ts',
      'no-runtime-cycle: src/util/a.ts imports src/util/b.ts (cycle: src/util/a.ts -> src/util/b.ts -> src/util/a.ts)',
      'pipeline-imports-stage: src/pipeline/types.ts imports src/ratelimit/stage.ts',
      'stage-imports-registry: src/ratelimit/stage.ts imports src/policy/stage-registry.ts',
      'stage-imports-sidecar: src/ratelimit/stage.ts imports src/sidecar/server.ts',
    ]);
  });
});
