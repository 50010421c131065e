import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { DASHBOARDS } from '../../dashboards/index.ts';
import { ROOT, generatedFiles, staleFiles } from '../../dashboards/generate.ts';

interface PanelJson {
  id?: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  targets?: { expr?: string; refId?: string; datasource?: { type?: string; uid?: string } }[];
  gridPos: { x: number; y: number; w: number; h: number };
}

function committed(file: string): { schemaVersion: number; uid: string; templating: { list: { name: string; type: string; query?: unknown }[] }; panels: PanelJson[] } {
  return JSON.parse(readFileSync(join(ROOT, 'dashboards', file), 'utf8'));
}

describe('dashboards as code', () => {
  it('the committed JSON, manifests and doc tables are exactly what dashboards/generate.ts produces', async () => {
    expect((await generatedFiles()).size).toBe(DASHBOARDS.length + 4);
    expect(await staleFiles()).toEqual([]);
  });

  for (const spec of DASHBOARDS) {
    describe(spec.file, () => {
      const d = committed(spec.file);
      it('uses a Prometheus datasource variable and never a fixed datasource uid', () => {
        expect(d.schemaVersion).toBeGreaterThanOrEqual(39); // Grafana 10.3+
        const ds = d.templating.list.find((v) => v.type === 'datasource');
        expect(ds).toMatchObject({ name: 'datasource', query: 'prometheus' });
        const refs = JSON.stringify(d).match(/"uid":\s*"[^"]*"/g) ?? [];
        // The dashboard's own uid, then only ${datasource} references.
        expect(refs.filter((r) => !r.includes('${datasource}'))).toEqual([`"uid":"${spec.uid}"`]);
      });

      it('every panel queries Prometheus with the job and instance filters; ids are unique; the grid does not overlap', () => {
        const panels = d.panels.filter((p) => p.type !== 'row');
        expect(panels.length).toBeGreaterThan(5);
        const ids = d.panels.map((p) => p.id);
        expect(new Set(ids).size).toBe(ids.length);
        for (const p of panels) {
          expect(p.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
          expect(p.targets?.length).toBeGreaterThan(0);
          for (const t of p.targets ?? []) {
            expect(t.datasource?.uid).toBe('${datasource}');
            expect(t.expr).toContain('job=~"$job", instance=~"$instance"');
          }
        }
        const cells = new Set<string>();
        for (const p of d.panels) {
          for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
            for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
              const k = `${x},${y}`;
              expect(cells.has(k), `${p.title} overlaps at ${k}`).toBe(false);
              cells.add(k);
            }
          }
          expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
        }
      });
    });
  }

  it('the Grafana provisioning reads the directory where the dashboards ConfigMap is mounted', () => {
    const prov = parse(readFileSync(join(ROOT, 'deploy/grafana/provisioning/palisade.yaml'), 'utf8'));
    const docs = readFileSync(join(ROOT, 'deploy/grafana/dashboards.yaml'), 'utf8').split(/^---$/m).map((t) => parse(t));
    const cm = docs.find((x) => x.metadata.name === 'palisade-grafana-dashboards');
    expect(Object.keys(cm.data).sort()).toEqual(DASHBOARDS.map((s) => s.file).sort());
    expect(prov.providers[0].type).toBe('file');
    expect(prov.providers[0].options.path).toBe('/var/lib/grafana/dashboards/palisade');
    const provCm = docs.find((x) => x.metadata.name === 'palisade-grafana-provisioning');
    expect(parse(provCm.data['palisade.yaml'])).toEqual(prov);
  });
});
