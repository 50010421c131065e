/**
 * Dashboards as data: each dashboard is a list of rows of panels with their PromQL, plus what
 * traffic must exist for a panel to show data (`expect`). `buildDashboard` turns a spec into
 * Grafana JSON with the Grafana Foundation SDK's typed builders; the Prometheus check
 * (test/dashboards/prometheus.test.ts) runs every query of the generated JSON and uses `expect`
 * to know which panels must return series.
 */
import * as cog from '@grafana/grafana-foundation-sdk/cog';
import * as common from '@grafana/grafana-foundation-sdk/common';
import {
  DashboardBuilder,
  DashboardCursorSync,
  DatasourceVariableBuilder,
  QueryVariableBuilder,
  RowBuilder,
  ThresholdsConfigBuilder,
  ThresholdsMode,
  VariableRefresh,
  VariableSort,
  type Dashboard,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder, PromQueryFormat } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as TimeseriesBuilder } from '@grafana/grafana-foundation-sdk/timeseries';
import { PanelBuilder as StatBuilder } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as BarGaugeBuilder } from '@grafana/grafana-foundation-sdk/bargauge';
import { PanelBuilder as TableBuilder } from '@grafana/grafana-foundation-sdk/table';

/**
 * What must have happened for a panel to show data. The Prometheus check produces some of these
 * and requires a series from every panel whose feature it produced.
 */
export type Feature =
  | 'traffic' // requests went through the sidecar
  | 'allow'
  | 'deny'
  | 'authn-deny' // an authentication stage denied
  | 'authz-deny'
  | 'upstream'
  | 'upstream-error'
  | 'tls-failure' // a failed mTLS handshake
  | 'policy' // a policy was loaded
  | 'policy-refused'
  | 'blocklist' // a block-list hit
  | 'blocklist-entries'
  | 'ratelimit'
  | 'jwt'
  | 'introspection'
  | 'audit' // a would-deny in audit mode
  | 'sink' // a decision sink is watched
  | 'spool'
  | 'detector' // a detector consumed events
  | 'detector-anomaly'
  | 'detector-block'
  | 'detector-expiry'
  | 'process';

export interface QuerySpec {
  readonly expr: string;
  readonly legend?: string;
  /** Instant query (tables, bar gauges of "top N over the range"). */
  readonly instant?: boolean;
}

export type PanelKind = 'timeseries' | 'stat' | 'bargauge' | 'table';

export interface PanelSpec {
  readonly title: string;
  readonly description: string;
  readonly kind: PanelKind;
  /**
   * Grafana unit id, matching what the queries measure (test/dashboards/units.test.ts checks it
   * against the metric names): s for durations, bytes for sizes, percentunit for ratios and CPU
   * (1 = one core), reqps / ops for rates of counters, short for counts (integer ticks).
   */
  readonly unit: string;
  readonly queries: readonly QuerySpec[];
  /** Feature whose presence means this panel must return series; null: may stay empty. */
  readonly expect: Feature | null;
  /** Grid width (of 24) and height. */
  readonly w?: number;
  readonly h?: number;
  readonly stack?: boolean;
  readonly min?: number;
  readonly max?: number;
  /** Stat/bar gauge thresholds: [value, color] above which the color applies (base is green). */
  readonly thresholds?: readonly (readonly [number, string])[];
}

export interface RowSpec {
  readonly title: string;
  readonly panels: readonly PanelSpec[];
}

export interface DashboardSpec {
  /** Output file name in dashboards/ (and ConfigMap key). */
  readonly file: string;
  readonly uid: string;
  readonly title: string;
  readonly description: string;
  readonly tags: readonly string[];
  /** Metric used to list the `job` and `instance` variable values. */
  readonly variableMetric: string;
  readonly rows: readonly RowSpec[];
}

/** The datasource variable; every panel and target refers to it, never to a fixed uid. */
export const DS_VAR = 'datasource';
const DS: common.DataSourceRef = { type: 'prometheus', uid: `\${${DS_VAR}}` };

/** Label matchers every query of these dashboards carries. */
export const SEL = 'job=~"$job", instance=~"$instance"';

/** Units of whole things (events, requests, entries): their axes get integer ticks only. */
export const COUNT_UNITS: ReadonlySet<string> = new Set(['short', 'none']);

/**
 * Hides a series that has no value in the whole range from the legend, the tooltip and the graph:
 * a label set Prometheus knows with nothing to draw must not list an empty entry. (Queries that can
 * yield NaN, quantiles of empty histograms and ratios of zero, are shaped not to: see the specs.)
 */
export const HIDE_EMPTY_SERIES = {
  matcher: { id: 'byValue', options: { reducer: 'allIsNull', op: 'gte', value: 0 } },
  properties: [{ id: 'custom.hideFrom', value: { legend: true, tooltip: true, viz: true } }],
};

/**
 * A quantile of a histogram, without NaN points: over an interval where the histogram saw
 * nothing, histogram_quantile gives NaN, which Grafana lists as a series with no line; `>= 0`
 * (every quantile here is a duration) drops those points, and a series with none left is not
 * returned at all.
 */
export function quantile(p: number, bucketRate: string, by = ''): string {
  return `histogram_quantile(${p}, sum by (le${by ? `, ${by}` : ''}) (${bucketRate})) >= 0`;
}

/** A ratio without NaN points: nothing is divided where the denominator is zero. */
export function ratio(numerator: string, denominator: string): string {
  return `${numerator} / (${denominator} > 0)`;
}

function thresholds(steps: readonly (readonly [number, string])[] | undefined): ThresholdsConfigBuilder {
  return new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([{ value: null, color: 'green' }, ...(steps ?? []).map(([value, color]) => ({ value, color }))]);
}

function targets(p: PanelSpec): DataqueryBuilder[] {
  return p.queries.map((q, i) => {
    const t = new DataqueryBuilder()
      .datasource(DS)
      .refId(String.fromCharCode(65 + i))
      .expr(q.expr)
      .legendFormat(q.legend ?? '__auto');
    if (q.instant) t.instant().format(PromQueryFormat.Table);
    else t.range();
    return t;
  });
}

function panel(p: PanelSpec, id: number): cog.Builder<import('@grafana/grafana-foundation-sdk/dashboard').Panel> {
  const w = p.w ?? 12;
  const h = p.h ?? 8;
  switch (p.kind) {
    case 'timeseries': {
      const b = new TimeseriesBuilder()
        .id(id)
        .title(p.title)
        .description(p.description)
        .datasource(DS)
        .unit(p.unit)
        .span(w)
        .height(h)
        .lineWidth(1)
        .fillOpacity(p.stack ? 30 : 10)
        .showPoints(common.VisibilityMode.Never)
        .legend(new common.VizLegendOptionsBuilder().showLegend(true).displayMode(common.LegendDisplayMode.List).placement(common.LegendPlacement.Bottom).calcs([]))
        .tooltip(new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.Descending));
      if (p.stack) b.stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal));
      // Every metric here is non-negative: the axis starts at 0, so a flat line reads as 0, not as a band around it.
      b.min(p.min ?? 0);
      if (p.max !== undefined) b.max(p.max);
      // Counts get integer ticks (Grafana drops fractional ticks when decimals is 0): no "0.25 requests".
      if (COUNT_UNITS.has(p.unit)) b.decimals(0);
      // An empty spool or buffer (all zeros) spans 0 to 1 KiB, not 0 B, 1 B, 1 B (ticks of half a byte).
      if (p.unit === 'bytes') b.axisSoftMax(1024);
      b.withOverride(HIDE_EMPTY_SERIES);
      for (const t of targets(p)) b.withTarget(t);
      return b;
    }
    case 'stat': {
      const b = new StatBuilder()
        .id(id)
        .title(p.title)
        .description(p.description)
        .datasource(DS)
        .unit(p.unit)
        .span(w)
        .height(h)
        .graphMode(common.BigValueGraphMode.Area)
        .colorMode(common.BigValueColorMode.Value)
        .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
        .thresholds(thresholds(p.thresholds));
      // A count shows whole numbers (increase() extrapolates: 1.12 policy reloads is 1).
      if (COUNT_UNITS.has(p.unit)) b.decimals(0);
      for (const t of targets(p)) b.withTarget(t);
      return b;
    }
    case 'bargauge': {
      const b = new BarGaugeBuilder()
        .id(id)
        .title(p.title)
        .description(p.description)
        .datasource(DS)
        .unit(p.unit)
        .span(w)
        .height(h)
        .orientation(common.VizOrientation.Horizontal)
        .displayMode(common.BarGaugeDisplayMode.Gradient)
        .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false))
        .thresholds(thresholds(p.thresholds));
      // A count shows whole numbers (increase() extrapolates: 1.12 policy reloads is 1).
      if (COUNT_UNITS.has(p.unit)) b.decimals(0);
      for (const t of targets(p)) b.withTarget(t);
      return b;
    }
    case 'table': {
      const b = new TableBuilder().id(id).title(p.title).description(p.description).datasource(DS).unit(p.unit).span(w).height(h);
      for (const t of targets(p)) b.withTarget(t);
      return b;
    }
  }
}

/** Builds the Grafana dashboard JSON model of a spec. */
export function buildDashboard(spec: DashboardSpec): Dashboard {
  const b = new DashboardBuilder(spec.title)
    .uid(spec.uid)
    .description(spec.description)
    .tags([...spec.tags])
    .editable()
    .tooltip(DashboardCursorSync.Crosshair)
    .refresh('30s')
    .time({ from: 'now-1h', to: 'now' })
    .timezone('browser')
    .withVariable(new DatasourceVariableBuilder(DS_VAR).label('Prometheus').type('prometheus'))
    .withVariable(
      new QueryVariableBuilder('job')
        .label('Job')
        .datasource(DS)
        .query({ qryType: 1, query: `label_values(${spec.variableMetric}, job)`, refId: 'PrometheusVariableQueryEditor-VariableQuery' })
        .definition(`label_values(${spec.variableMetric}, job)`)
        .refresh(VariableRefresh.OnTimeRangeChanged)
        .sort(VariableSort.AlphabeticalAsc)
        .multi(true)
        // "All" expands to the listed values (no custom all value): the detector's job never leaks
        // into the sidecar dashboards' process panels, nor the sidecars' into the detector's.
        .includeAll(true)
        .current({ selected: true, text: ['All'], value: ['$__all'] }),
    )
    .withVariable(
      new QueryVariableBuilder('instance')
        .label('Instance')
        .datasource(DS)
        .query({ qryType: 1, query: `label_values(${spec.variableMetric}{job=~"$job"}, instance)`, refId: 'PrometheusVariableQueryEditor-VariableQuery' })
        .definition(`label_values(${spec.variableMetric}{job=~"$job"}, instance)`)
        .refresh(VariableRefresh.OnTimeRangeChanged)
        .sort(VariableSort.AlphabeticalAsc)
        .multi(true)
        // "All" expands to the listed values (no custom all value): the detector's job never leaks
        // into the sidecar dashboards' process panels, nor the sidecars' into the detector's.
        .includeAll(true)
        .current({ selected: true, text: ['All'], value: ['$__all'] }),
    );
  // Explicit, stable panel ids (links to a panel survive regeneration as long as the order holds).
  let id = 0;
  for (const row of spec.rows) {
    b.withRow(new RowBuilder(row.title).id(++id));
    for (const p of row.panels) b.withPanel(panel(p, ++id));
  }
  return b.build();
}

/** Stable JSON text of a dashboard (what is committed). */
export function dashboardJson(spec: DashboardSpec): string {
  return `${JSON.stringify(buildDashboard(spec), null, 2)}\n`;
}
