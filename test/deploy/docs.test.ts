/**
 * docs/deploy.md stays true: its option tables are the ones the code
 * generates, it covers every annotation, the supply-chain commands are there,
 * and every deploy/ path it names exists.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { webhookSettingsTable } from '../../src/config/webhook-settings.ts';
import { ANNOTATIONS } from '../../src/deploy/inject/names.ts';
import { injectOptionsTable } from '../../src/deploy/inject/options.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const doc = readFileSync(join(ROOT, 'docs', 'deploy.md'), 'utf8');

describe('docs/deploy.md', () => {
  it('is the "Deploy to Kubernetes" guide', () => {
    expect(doc.split('\n')[0]).toBe('# Deploy to Kubernetes');
  });

  it('carries the option tables generated from the code', () => {
    expect(doc).toContain(injectOptionsTable());
    expect(doc).toContain(webhookSettingsTable());
  });

  it('documents every palisade.dev annotation', () => {
    for (const a of Object.values(ANNOTATIONS)) expect(doc, a).toContain(a);
  });

  it('says how to sign the image, attach an SBOM and provenance, and update the base digest', () => {
    for (const s of ['cosign sign', 'cosign attest', '--type spdxjson', '--type slsaprovenance', 'cosign verify', 'syft', 'crane digest cgr.dev/chainguard/node:latest-dev', 'crane digest cgr.dev/chainguard/node:latest']) expect(doc, s).toContain(s);
  });

  it('documents the failurePolicy choice', () => {
    expect(doc).toMatch(/failurePolicy: Fail/);
  });

  it('names only deploy/ paths that exist', () => {
    const paths = [...doc.matchAll(/`(deploy\/[A-Za-z0-9_./-]+)`/g)].map((m) => m[1]!.replace(/\/$/, ''));
    expect(paths.length).toBeGreaterThan(5);
    for (const p of new Set(paths)) expect(existsSync(join(ROOT, p)), p).toBe(true);
  });
});
