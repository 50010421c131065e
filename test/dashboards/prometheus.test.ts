/**
 * The dashboards and alert rules against a real Prometheus (Debian's package) scraping a real
 * sidecar and the real detector under generated traffic (support/scenario.ts: allows, each kind
 * of deny the pipeline has, audit-mode would-denies, a manual block, a flood the detector blocks,
 * upstream failures, refused TLS handshakes; decisions through Kafka). Every query
 * of every panel of every dashboard runs through Prometheus's HTTP API the way Grafana would send
 * it: each must parse and evaluate, each panel whose data the traffic produced must return a
 * series with a value, and no series returned may be without any value (an empty legend entry). Then the policy-reload-refused alert fires in Prometheus (production rules
 * file, 1 s evaluation) when a bad policy is written, and resolves when a valid one is back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DASHBOARDS } from '../../dashboards/index.ts';
import { expandGrafanaVariables, grafanaAllValue, type PromResult } from './support/prometheus.ts';
import { DETECTOR_JOB, READER, SIDECAR_JOB, startScenario, type Scenario } from './support/scenario.ts';

let sc: Scenario;
let floodBlockedMs = 0;

beforeAll(async () => {
  sc = await startScenario();
  // Several rounds a scrape apart, so rate() windows hold more than one sample of change.
  for (let i = 0; i < 4; i++) {
    await sc.round();
    await new Promise((r) => setTimeout(r, 1100));
  }
  await sc.block();
  floodBlockedMs = await sc.flood();
  await sc.tlsFailures(3);
  await sc.scraped();
}, 180_000);

afterAll(async () => {
  await sc?.close();
});

function finiteValues(r: PromResult): number {
  let n = 0;
  for (const s of r.data?.result ?? []) {
    for (const [, v] of s.values ?? (s.value ? [s.value] : [])) if (Number.isFinite(Number(v))) n++;
  }
  return n;
}

describe('dashboards against a real Prometheus scraping a real sidecar and detector', () => {
  it('scrapes the sidecar and the detector, and sees every request and the detector\'s block', async () => {
    const targets = await sc.prom.targets();
    expect(targets.map((t) => [t.labels['job'], t.health]).sort()).toEqual([[DETECTOR_JOB, 'up'], [SIDECAR_JOB, 'up']]);
    console.log(`flood blocked at the sidecar ${floodBlockedMs} ms after it started`);
    expect(await sc.value(`sum(palisade_detector_blocks_issued_total{job="${DETECTOR_JOB}"})`)).toBeGreaterThanOrEqual(1);
    expect(await sc.value(`sum(palisade_blocklist_entries{job="${SIDECAR_JOB}", source="detector"})`)).toBeGreaterThanOrEqual(1);
    expect(await sc.value(`sum(palisade_detector_events_consumed_total{job="${DETECTOR_JOB}"})`)).toBeGreaterThan(0);
    expect(await sc.value(`sum(palisade_requests_total{job="${SIDECAR_JOB}"})`)).toBe(sc.sent);
    expect(await sc.value(`sum(palisade_requests_total{job="${SIDECAR_JOB}", verdict="allow"})`)).toBe(sc.allowed);
  });

  for (const spec of DASHBOARDS) {
    it(`${spec.title}: every panel query parses; every panel with produced data returns series`, async () => {
      const json = JSON.parse(readFileSync(join(import.meta.dirname, '../../dashboards', spec.file), 'utf8')) as {
        panels: { type: string; title: string; targets?: { expr: string; refId: string; instant?: boolean }[] }[];
      };
      const expectOf = new Map(spec.rows.flatMap((r) => r.panels.map((p) => [p.title, p.expect] as const)));
      const end = Math.ceil(Date.now() / 1000);
      const range = `${end - sc.trafficStart + 60}s`;
      // The dashboard's variables as Grafana resolves them with "All" selected.
      const jobs = await sc.prom.labelValues('job', spec.variableMetric);
      const job = grafanaAllValue(jobs);
      const instance = grafanaAllValue(jobs.length ? await sc.prom.labelValues('instance', `${spec.variableMetric}{job=~"${job}"}`) : []);
      const report: string[] = [];
      const failures: string[] = [];
      for (const panel of json.panels.filter((p) => p.type !== 'row')) {
        const feature = expectOf.get(panel.title);
        expect(feature, `panel "${panel.title}" has a spec`).not.toBeUndefined();
        let panelValues = 0;
        for (const t of panel.targets ?? []) {
          const expr = expandGrafanaVariables(t.expr, { rateInterval: '10s', range, job, instance });
          const r = t.instant ? await sc.prom.query(expr, end) : await sc.prom.queryRange(expr, sc.trafficStart - 5, end, 1);
          if (r.status !== 'success') failures.push(`${panel.title} [${t.refId}]: ${r.errorType}: ${r.error}\n    ${expr}`);
          panelValues += finiteValues(r);
          // A series with no value in the whole range is a legend entry with nothing drawn (NaN quantiles, 0/0 ratios).
          for (const series of t.instant ? [] : (r.data?.result ?? [])) {
            if (finiteValues({ ...r, data: { ...r.data!, result: [series] } }) === 0) failures.push(`${panel.title} [${t.refId}]: series ${JSON.stringify(series.metric)} has no value in the range (an empty legend entry)\n    ${expr}`);
          }
        }
        const must = feature !== null && feature !== undefined && sc.produced.has(feature);
        report.push(`${must ? 'must' : 'may '} ${String(panelValues).padStart(5)}  ${panel.title}${feature ? ` (${feature})` : ''}`);
        if (must && panelValues === 0) failures.push(`${panel.title}: no data, but the traffic produced "${feature}"`);
      }
      console.log(`${spec.title}\n  ${report.join('\n  ')}`);
      expect(failures).toEqual([]);
    });
  }

  it('the policy-reload-refused alert fires in Prometheus when a bad policy is written, and resolves when it is fixed', async () => {
    const alertState = async () => (await sc.prom.alerts()).find((a) => a.labels['alertname'] === 'PalisadePolicyReloadRefused');
    expect(await alertState()).toBeUndefined();
    // Second-resolution timestamps: make the refusal's second differ from the initial load's.
    await new Promise((r) => setTimeout(r, 1100));
    writeFileSync(sc.policyFile, sc.policy('2').replace('effect: deny', 'effect: maybe'));
    expect(await sc.sidecar.reloadPolicy()).toBeInstanceOf(Error);
    const deadline = Date.now() + 20_000;
    let firing = await alertState();
    while (firing?.state !== 'firing') {
      if (Date.now() > deadline) throw new Error(`alert not firing: ${JSON.stringify(await sc.prom.alerts())}`);
      await new Promise((r) => setTimeout(r, 250));
      firing = await alertState();
    }
    expect(firing.labels).toMatchObject({ job: SIDECAR_JOB, severity: 'warning', component: 'sidecar' });
    expect(firing.annotations['summary']).toContain('Policy refused by 127.0.0.1:');
    // The old policy is still in force meanwhile.
    expect(sc.sidecar.policy()!.version).toBe('1');
    expect(await sc.get(READER, '/orders/export')).toBe(403);

    await new Promise((r) => setTimeout(r, 1100));
    writeFileSync(sc.policyFile, sc.policy('3'));
    expect(await sc.sidecar.reloadPolicy()).toBeNull();
    const deadline2 = Date.now() + 20_000;
    while ((await alertState()) !== undefined) {
      if (Date.now() > deadline2) throw new Error(`alert did not resolve: ${JSON.stringify(await sc.prom.alerts())}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(await sc.value(`palisade_policy_reloads_total{job="${SIDECAR_JOB}", result="refused"}`)).toBeGreaterThanOrEqual(1);
  });
});
