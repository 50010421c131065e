import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../../dashboards/generate.ts';
import { promtoolPath } from './support/prometheus.ts';

function promtool(args: string[]): string {
  try {
    return execFileSync(promtoolPath(), args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`promtool ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

describe('alert rules (promtool from the Debian prometheus package)', () => {
  it('promtool check rules passes', () => {
    const out = promtool(['check', 'rules', join(ROOT, 'dashboards/alerts/palisade-rules.yaml')]);
    expect(out).toMatch(/SUCCESS: 13 rules found/);
  });

  it('promtool test rules: every alert fires on its condition and not on a normal neighbour', () => {
    const out = promtool(['test', 'rules', join(ROOT, 'dashboards/alerts/palisade-rules.test.yaml')]);
    expect(out).toContain('SUCCESS');
  });
});
