/**
 * The import rules the layout promises, checked by dependency-cruiser (test/repo/architecture.test.ts
 * runs them in `npm test`; `node scripts/architecture.ts` prints the violations of this checkout).
 *
 *   src/pipeline/          the request path's vocabulary and runner: imports no stage, no registry, no server
 *   stage folders          authn, authz, blocklist, ratelimit, validation, limits: never import src/sidecar/,
 *                          nor the registry or the compiler that imports them (src/policy/stage-registry.ts, load.ts)
 *   src/policy/stage-registry.ts   the one module that imports every stage
 *   src/sidecar/           the server, above all of them
 *   detectors/             a separate product: reads src/ only through the modules meant for it
 *
 * Imports are read with swc (dependency-cruiser's TypeScript parser needs the TypeScript 5 API,
 * which the TypeScript 7 compiler of this project does not have), which also tells type-only
 * imports apart: a cycle made only of type imports costs nothing at run time and is allowed.
 */
import { cruise, type IForbiddenRuleType, type IViolation } from 'dependency-cruiser';

const STAGES = '(authn|authz|blocklist|ratelimit|validation|limits)';

/**
 * What detectors/ may import from src/, and why. Anything else is a violation: the detector is
 * deployed on its own and must not pull in the sidecar.
 */
export const DETECTOR_ALLOWED = [
  // Decision encoding: the record, its OCSF form and reader.
  '^src/decision/record\\.ts$',
  '^src/decision/ocsf/',
  // The decision record's vocabulary (Identity, stage names).
  '^src/pipeline/types\\.ts$',
  // Kafka: clients, topics, the one-shot topic reader.
  '^src/kafka/',
  // Block-list records: the wire format, the entry type, the topic follower.
  '^src/blocklist/(kafka-record|entry|kafka-feed)\\.ts$',
  // Quota records: the wire format the quota aggregator publishes and sidecars follow.
  '^src/ratelimit/quota-record\\.ts$',
  // Shared utilities: stable codes, ids, ajv, freezing, backoff.
  '^src/errors/codes\\.ts$',
  '^src/util/',
] as const;

/** Allowed only to detectors/embedded.ts: the detector running inside the sidecar process. */
export const EMBEDDED_ONLY = ['^src/blocklist/store\\.ts$', '^src/sidecar/observer\\.ts$', '^src/pipeline/services\\.ts$'] as const;

export const ARCHITECTURE_RULES: IForbiddenRuleType[] = [
  {
    name: 'no-runtime-cycle',
    comment: 'A cycle of runtime imports (type-only imports are erased and do not count): modules that cannot be loaded, tested or understood one without the other.',
    severity: 'error',
    from: {},
    to: { circular: true, dependencyTypesNot: ['type-only'], viaOnly: { dependencyTypesNot: ['type-only'] } },
  },
  {
    name: 'stage-imports-sidecar',
    comment: 'A stage folder imports src/sidecar/: the stages sit below the server that runs them (long-lived parts come through src/pipeline/services.ts).',
    severity: 'error',
    from: { path: `^src/${STAGES}/` },
    to: { path: '^src/sidecar/' },
  },
  {
    name: 'stage-imports-registry',
    comment: 'A stage folder imports the stage registry or the policy compiler, which import every stage.',
    severity: 'error',
    from: { path: `^src/${STAGES}/` },
    to: { path: '^src/policy/(stage-registry|load)\\.ts$' },
  },
  {
    name: 'pipeline-imports-stage',
    comment: 'src/pipeline/ (the vocabulary and the runner) imports a stage, the registry or the server: it must stay below them.',
    severity: 'error',
    from: { path: '^src/pipeline/' },
    to: { path: `^src/(${STAGES.slice(1, -1)}|sidecar)/|^src/policy/(stage-registry|load)\\.ts$` },
  },
  {
    name: 'detector-imports-src',
    comment: `detectors/ imports from src/ only: ${DETECTOR_ALLOWED.join(' ')} (and, in detectors/embedded.ts, ${EMBEDDED_ONLY.join(' ')}).`,
    severity: 'error',
    from: { path: '^detectors/', pathNot: '^detectors/embedded\\.ts$' },
    to: { path: '^src/', pathNot: [...DETECTOR_ALLOWED] },
  },
  {
    name: 'embedded-detector-imports-src',
    comment: `detectors/embedded.ts imports from src/ only what detectors/ may, plus ${EMBEDDED_ONLY.join(' ')}.`,
    severity: 'error',
    from: { path: '^detectors/embedded\\.ts$' },
    to: { path: '^src/', pathNot: [...DETECTOR_ALLOWED, ...EMBEDDED_ONLY] },
  },
];

/** One broken rule, as a line a reader can act on. */
export function describeViolation(v: IViolation): string {
  const via = v.cycle && v.cycle.length > 0 ? ` (cycle: ${v.from} -> ${v.cycle.map((c) => c.name).join(' -> ')})` : '';
  return `${v.rule.name}: ${v.from} imports ${v.to}${via}`;
}

/** Runs the rules over `paths` (relative to `baseDir`); returns the violations, one line each. */
export async function checkArchitecture(baseDir: string, paths: readonly string[] = ['src', 'detectors']): Promise<string[]> {
  const result = await cruise([...paths], {
    baseDir,
    parser: 'swc',
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: 'node_modules' },
    validate: true,
    ruleSet: { forbidden: ARCHITECTURE_RULES },
  });
  const output = result.output;
  if (typeof output === 'string') throw new Error('dependency-cruiser returned text, not a result');
  return output.summary.violations.map(describeViolation).sort();
}

if (import.meta.main) {
  const found = await checkArchitecture(process.cwd());
  for (const line of found) console.log(line);
  console.log(found.length === 0 ? 'architecture: no violation' : `architecture: ${found.length} violation(s)`);
  process.exitCode = found.length === 0 ? 0 : 1;
}
