/**
 * Renders each dashboard of dashboards/*.json to docs/img/<uid>.png from real data, for the README.
 * Grafana is not packaged for these machines, so this draws a faithful view instead: it runs the
 * observability scenario (a real sidecar under generated traffic, scraped by a real Prometheus;
 * test/dashboards/support/scenario.ts), sends every panel's queries to Prometheus exactly as the
 * Prometheus check does, draws each panel at its grid position (time series as SVG lines, stats,
 * bar gauges, tables) in an HTML page, and screenshots the page with Debian's headless Chromium.
 * A documentation tool, not part of CI.
 *
 *   bash scripts/ensure-apt.sh prometheus chromium
 *   node scripts/render-dashboards.ts [traffic-seconds]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DASHBOARDS } from '../dashboards/index.ts';
import { expandGrafanaVariables, grafanaAllValue, type PromResult } from '../test/dashboards/support/prometheus.ts';
import { startScenario } from '../test/dashboards/support/scenario.ts';

const ROOT = resolve(import.meta.dirname, '..');
const SECONDS = Number(process.argv[2] ?? 90);
const STEP = 2;

interface Target {
  expr: string;
  refId: string;
  legendFormat?: string;
  instant?: boolean;
}
interface Panel {
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Target[];
  fieldConfig?: { defaults?: { unit?: string; min?: number; max?: number; decimals?: number; custom?: { axisSoftMax?: number }; thresholds?: { steps: { value: number | null; color: string }[] } } };
}
interface Series {
  name: string;
  points: [number, number][];
}

// ---------------------------------------------------------------- data
console.log(`starting the scenario (real sidecar + Prometheus), ${SECONDS} s of traffic...`);
const sc = await startScenario();
const start = Date.now();
let blocked = false;
let refused = false;
let fixed = false;
while (Date.now() - start < SECONDS * 1000) {
  const t = (Date.now() - start) / 1000;
  // Traffic that swells and ebbs, so the time series have a shape.
  const scale = 1 + Math.round(2 * (1 + Math.sin(t / 9)));
  await sc.round(scale);
  if (t > SECONDS * 0.2 && Math.random() < 0.3) await sc.tlsFailures(1);
  if (!blocked && t > SECONDS * 0.45) {
    await sc.block();
    console.log(`flood blocked by the detector after ${await sc.flood()} ms`);
    blocked = true;
  }
  if (!refused && t > SECONDS * 0.6) {
    writeFileSync(sc.policyFile, sc.policy('2').replace('effect: deny', 'effect: maybe'));
    await sc.sidecar.reloadPolicy();
    refused = true;
  }
  if (!fixed && t > SECONDS * 0.8) {
    writeFileSync(sc.policyFile, sc.policy('3'));
    await sc.sidecar.reloadPolicy();
    fixed = true;
  }
  await new Promise((r) => setTimeout(r, 400));
}
await sc.scraped();
const end = Math.ceil(Date.now() / 1000);
const from = sc.trafficStart - 10;

function legend(format: string | undefined, metric: Record<string, string>): string {
  if (format && format !== '__auto') return format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_m, k: string) => metric[k] ?? '');
  const labels = Object.entries(metric).filter(([k]) => k !== '__name__');
  return labels.length ? labels.map(([k, v]) => `${k}=${v}`).join(', ') : (metric['__name__'] ?? 'value');
}

async function panelData(p: Panel, job: string, instance: string): Promise<Series[]> {
  const out: Series[] = [];
  for (const t of p.targets ?? []) {
    const expr = expandGrafanaVariables(t.expr, { rateInterval: '10s', range: `${end - from}s`, job, instance });
    const r: PromResult = t.instant ? await sc.prom.query(expr, end) : await sc.prom.queryRange(expr, from, end, STEP);
    if (r.status !== 'success') throw new Error(`${p.title}: ${r.error}`);
    for (const s of r.data?.result ?? []) {
      const raw = s.values ?? (s.value ? [s.value] : []);
      const points = raw.map(([ts, v]) => [ts, Number(v)] as [number, number]).filter(([, v]) => Number.isFinite(v));
      if (points.length) out.push({ name: legend(t.legendFormat, s.metric), points });
    }
  }
  return out;
}

// ---------------------------------------------------------------- drawing
const COLORS = ['#73bf69', '#f2cc0c', '#5794f2', '#ff9830', '#f2495c', '#b877d9', '#8ab8ff', '#fade2a', '#37872d', '#c4162a'];
const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

function fmt(v: number, unit: string | undefined, decimals?: number): string {
  const si = (x: number, suffix: string) => {
    const a = Math.abs(x);
    if (decimals === 0 && a < 1e3) return `${x.toFixed(0)}${suffix}`;
    if (a >= 1e6) return `${(x / 1e6).toFixed(1)}M${suffix}`;
    if (a >= 1e3) return `${(x / 1e3).toFixed(1)}k${suffix}`;
    if (a >= 100 || x === 0) return `${x.toFixed(0)}${suffix}`;
    if (a >= 1) return `${x.toFixed(2)}${suffix}`;
    return `${x.toPrecision(2)}${suffix}`;
  };
  switch (unit) {
    case 'reqps':
      return si(v, ' req/s');
    case 'ops':
      return si(v, ' ops/s');
    case 'percentunit':
      return `${(v * 100).toFixed(1)}%`;
    case 's':
      return v === 0 ? '0 s' : Math.abs(v) < 1e-3 ? `${(v * 1e6).toFixed(0)} µs` : Math.abs(v) < 1 ? `${(v * 1e3).toFixed(1)} ms` : `${v.toFixed(2)} s`;
    case 'bytes': {
      const u = ['B', 'KiB', 'MiB', 'GiB'];
      let x = v;
      let i = 0;
      while (Math.abs(x) >= 1024 && i < u.length - 1) {
        x /= 1024;
        i++;
      }
      return `${x.toFixed(i ? 1 : 0)} ${u[i]}`;
    }
    default:
      return si(v, '');
  }
}

/** About four ticks at a 1-2-2.5-5 step from min, the last at or above max; whole steps only for integer axes. */
function axisTicks(min: number, max: number, integer: boolean): number[] {
  const raw = (max - min) / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw)!;
  if (integer) step = Math.max(1, Math.ceil(step));
  const out: number[] = [];
  for (let i = 0; out.length === 0 || out.at(-1)! < max; i++) out.push(min + i * step);
  return out;
}

function thresholdColor(p: Panel, v: number): string {
  let c = '#73bf69';
  for (const step of p.fieldConfig?.defaults?.thresholds?.steps ?? []) if (step.value !== null && v >= step.value) c = step.color === 'orange' ? '#ff9830' : step.color === 'red' ? '#f2495c' : step.color;
  return c;
}

function timeseries(p: Panel, data: Series[], w: number, h: number): string {
  const unit = p.fieldConfig?.defaults?.unit;
  const padL = 64;
  const padB = 18;
  const legendH = Math.min(60, 16 * Math.ceil(data.length / 3));
  const cw = w - padL - 8;
  const ch = h - padB - legendH - 6;
  const all = data.flatMap((s) => s.points.map(([, v]) => v));
  const defaults = p.fieldConfig?.defaults;
  const min = Math.min(0, defaults?.min ?? Infinity, ...all);
  // As Grafana: the soft max widens the axis unless the data goes beyond it; decimals 0 means integer ticks only.
  let max = Math.max(defaults?.max ?? -Infinity, defaults?.custom?.axisSoftMax ?? -Infinity, ...all);
  if (!(max > min)) max = min + 1;
  const splits = axisTicks(min, max, defaults?.decimals === 0);
  max = Math.max(max, splits.at(-1)!);
  const x = (ts: number) => padL + ((ts - from) / (end - from)) * cw;
  const y = (v: number) => 4 + ch - ((v - min) / (max - min)) * ch;
  let svg = '';
  for (const v of splits) {
    svg += `<line x1="${padL}" x2="${padL + cw}" y1="${y(v)}" y2="${y(v)}" stroke="#2c3235"/><text x="${padL - 6}" y="${y(v) + 4}" text-anchor="end">${esc(fmt(v, unit, defaults?.decimals))}</text>`;
  }
  for (let i = 0; i <= 4; i++) {
    const ts = from + ((end - from) * i) / 4;
    const d = new Date(ts * 1000);
    svg += `<text x="${x(ts)}" y="${4 + ch + 14}" text-anchor="middle">${d.toISOString().slice(11, 19)}</text>`;
  }
  data.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    // Break the line where a step is missing (as Grafana does for gaps).
    let path = '';
    let prev = -Infinity;
    for (const [ts, v] of s.points) {
      path += `${ts - prev > STEP * 1.5 ? 'M' : 'L'}${x(ts).toFixed(1)},${y(v).toFixed(1)} `;
      prev = ts;
    }
    svg += `<path d="${path}" fill="none" stroke="${color}" stroke-width="1.5"/>`;
  });
  const legendHtml = data.map((s, i) => `<span><i style="background:${COLORS[i % COLORS.length]}"></i>${esc(s.name)}</span>`).join('');
  return `<svg width="${w}" height="${h - legendH}" class="chart">${svg}</svg><div class="legend" style="height:${legendH}px">${legendHtml}</div>`;
}

function stat(p: Panel, data: Series[]): string {
  const s = data[0];
  if (!s) return '';
  const v = s.points.at(-1)![1];
  return `<div class="stat" style="color:${thresholdColor(p, v)}">${esc(fmt(v, p.fieldConfig?.defaults?.unit, p.fieldConfig?.defaults?.decimals))}</div>`;
}

function bargauge(p: Panel, data: Series[]): string {
  const vals = data.map((s) => ({ name: s.name, v: s.points.at(-1)![1] })).sort((a, b) => b.v - a.v);
  const max = Math.max(...vals.map((x) => x.v), 1e-9);
  return vals.map((x) => `<div class="bar"><span class="bn">${esc(x.name || '(none)')}</span><span class="bb"><b style="width:${(x.v / max) * 100}%"></b></span><span class="bv">${esc(fmt(x.v, p.fieldConfig?.defaults?.unit, p.fieldConfig?.defaults?.decimals))}</span></div>`).join('');
}

function table(data: Series[], p: Panel): string {
  const rows = data.map((s) => `<tr><td>${esc(s.name)}</td><td>${esc(fmt(s.points.at(-1)![1], p.fieldConfig?.defaults?.unit))}</td></tr>`).join('');
  return `<table><tr><th>Series</th><th>Value</th></tr>${rows}</table>`;
}

const CELL_W = 1600 / 24;
const CELL_H = 34;
const dir = mkdtempSync(join(tmpdir(), 'palisade-render-'));
mkdirSync(join(ROOT, 'docs/img'), { recursive: true });
for (const spec of DASHBOARDS) {
  const dash = JSON.parse(readFileSync(join(ROOT, 'dashboards', spec.file), 'utf8')) as { title: string; uid: string; panels: Panel[] };
  const jobs = await sc.prom.labelValues('job', spec.variableMetric);
  const job = grafanaAllValue(jobs);
  const instance = grafanaAllValue(jobs.length ? await sc.prom.labelValues('instance', `${spec.variableMetric}{job=~"${job}"}`) : []);
  let html = '';
  let bottom = 0;
  for (const p of dash.panels) {
    const { x, y, w, h } = p.gridPos;
    bottom = Math.max(bottom, y + h);
    const left = x * CELL_W + 8;
    const top = y * CELL_H + 64;
    const pw = w * CELL_W - 8;
    const ph = h * CELL_H - 8;
    if (p.type === 'row') {
      html += `<div class="row" style="left:${left}px;top:${top}px;width:${pw}px">⌄ ${esc(p.title)}</div>`;
      continue;
    }
    const data = await panelData(p, job, instance);
    const inner = ph - 30;
    const body = data.length === 0 ? '<div class="nodata">No data</div>' : p.type === 'timeseries' ? timeseries(p, data, pw - 16, inner) : p.type === 'stat' ? stat(p, data) : p.type === 'bargauge' ? bargauge(p, data) : table(data, p);
    html += `<div class="panel" style="left:${left}px;top:${top}px;width:${pw}px;height:${ph}px"><div class="title">${esc(p.title)}</div><div class="body">${body}</div></div>`;
  }
  const height = bottom * CELL_H + 80;
  const page = `<!doctype html><html><head><meta charset="utf-8"><style>
    body{margin:0;background:#111217;color:#ccccdc;font:12px Inter,Helvetica,Arial,sans-serif;width:1600px;height:${height}px;position:relative;overflow:hidden}
    header{position:absolute;left:8px;top:10px;right:8px;display:flex;gap:18px;align-items:center}
    header h1{font-size:18px;font-weight:500;margin:0 20px 0 0;color:#e0e0ec}
    header .v{background:#181b1f;border:1px solid #2c3235;padding:4px 8px;border-radius:2px}
    header .t{margin-left:auto}
    .row{position:absolute;font-size:14px;font-weight:500;color:#e0e0ec;padding-top:8px}
    .panel{position:absolute;background:#181b1f;border:1px solid #2c3235;border-radius:2px;box-sizing:border-box;overflow:hidden}
    .title{height:26px;line-height:26px;padding:0 8px;font-weight:500;color:#e0e0ec;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
    .body{padding:0 8px;height:calc(100% - 30px);position:relative}
    .chart text{fill:#8e8e9e;font-size:10px}
    .legend{display:flex;flex-wrap:wrap;gap:2px 14px;overflow:hidden;font-size:11px}
    .legend i{display:inline-block;width:12px;height:3px;margin-right:5px;vertical-align:middle}
    .stat{font-size:40px;font-weight:500;text-align:center;line-height:${5 * CELL_H - 50}px}
    .nodata{color:#6e6e7e;text-align:center;padding-top:20%}
    .bar{display:flex;align-items:center;gap:8px;margin:4px 0}.bn{width:30%;overflow:hidden;white-space:nowrap;text-overflow:ellipsis}
    .bb{flex:1;background:#22252b;height:16px}.bb b{display:block;height:100%;background:linear-gradient(90deg,#37872d,#73bf69)}.bv{width:70px;text-align:right}
    table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #2c3235;padding:4px;text-align:left}
  </style></head><body><header><h1>${esc(dash.title)}</h1><span class="v">Prometheus: prometheus</span><span class="v">Job: All</span><span class="v">Instance: All</span>
  <span class="t v">${new Date(from * 1000).toISOString().slice(0, 19).replace('T', ' ')} to ${new Date(end * 1000).toISOString().slice(11, 19)} UTC</span></header>${html}</body></html>`;
  const file = join(dir, `${dash.uid}.html`);
  writeFileSync(file, page);
  const png = join(ROOT, 'docs/img', `${dash.uid}.png`);
  execFileSync(
    '/usr/bin/chromium',
    ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--hide-scrollbars', `--user-data-dir=${mkdtempSync(join(dir, 'chrome-'))}`, `--screenshot=${png}`, `--window-size=1600,${height}`, `file://${file}`],
    { stdio: 'ignore', timeout: 120_000 },
  );
  console.log(`wrote docs/img/${dash.uid}.png`);
}
await sc.close();
rmSync(dir, { recursive: true, force: true });
