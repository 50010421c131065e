/** Security view: denies by reason and route, authentication, authorization, rate limits, block list. */
import { SEL, ratio, type DashboardSpec } from '../lib/spec.ts';

const RI = '$__rate_interval';
const rate = (metric: string, match = '') => `rate(${metric}{${SEL}${match ? `, ${match}` : ''}}[${RI}])`;

export const securityView: DashboardSpec = {
  file: 'palisade-security.json',
  uid: 'palisade-security',
  title: 'Palisade / Security',
  description: 'What the sidecars refuse and why: deny reasons, routes, authentication, authorization, rate limits and the block list.',
  tags: ['palisade', 'security'],
  variableMetric: 'palisade_requests_total',
  rows: [
    {
      title: 'Denies',
      panels: [
        { title: 'Denies per second', description: 'All denied requests.', kind: 'stat', unit: 'reqps', w: 6, h: 5, expect: 'deny', thresholds: [[1, 'orange'], [10, 'red']], queries: [{ expr: `sum(${rate('palisade_requests_total', 'verdict="deny"')})`, legend: 'denies/s' }] },
        { title: 'Authentication failures per second', description: 'Requests denied by the authentication stage.', kind: 'stat', unit: 'reqps', w: 6, h: 5, expect: 'authn-deny', thresholds: [[1, 'orange'], [10, 'red']], queries: [{ expr: `sum(${rate('palisade_requests_total', 'stage="authn", verdict="deny"')})`, legend: 'authn failures/s' }] },
        { title: 'Blocked per second', description: 'Requests refused because the client is on the block list.', kind: 'stat', unit: 'reqps', w: 6, h: 5, expect: 'blocklist', thresholds: [[0.1, 'orange'], [5, 'red']], queries: [{ expr: `sum(${rate('palisade_blocklist_hits_total')})`, legend: 'blocked/s' }] },
        { title: 'Rate-limited per second', description: 'Requests refused by a rate limit.', kind: 'stat', unit: 'reqps', w: 6, h: 5, expect: 'ratelimit', thresholds: [[1, 'orange'], [10, 'red']], queries: [{ expr: `sum(${rate('palisade_rate_limited_total')})`, legend: 'rate-limited/s' }] },
        { title: 'Denies by reason code', description: 'Denied requests per second by stable reason code (docs/codes.md).', kind: 'timeseries', unit: 'reqps', w: 24, stack: true, expect: 'deny', queries: [{ expr: `sum by (code) (${rate('palisade_requests_total', 'verdict="deny"')})`, legend: '{{code}}' }] },
        { title: 'Denies by stage', description: 'Which stage refuses: block list, authentication, rate limit, authorization, validation, upstream, request layer.', kind: 'timeseries', unit: 'reqps', stack: true, expect: 'deny', queries: [{ expr: `sum by (stage) (${rate('palisade_requests_total', 'verdict="deny"')})`, legend: '{{stage}}' }] },
        { title: 'Top deny routes', description: 'Route templates with the most denies over the selected time range.', kind: 'bargauge', unit: 'short', expect: 'deny', queries: [{ expr: `topk(10, sum by (route) (increase(palisade_requests_total{${SEL}, verdict="deny"}[$__range])))`, legend: '{{route}}', instant: true }] },
      ],
    },
    {
      title: 'Authentication',
      panels: [
        { title: 'Authentication failures by code', description: 'Missing, malformed, expired, wrongly signed or inactive credentials; peers outside the trust domain.', kind: 'timeseries', unit: 'reqps', w: 12, expect: 'authn-deny', queries: [{ expr: `sum by (code) (${rate('palisade_requests_total', 'stage="authn", verdict="deny"')})`, legend: '{{code}}' }] },
        { title: 'mTLS handshake failures by reason', description: 'Clients refused before HTTP: no certificate, unknown CA, expired certificate.', kind: 'timeseries', unit: 'ops', w: 12, expect: 'tls-failure', queries: [{ expr: `sum by (reason) (${rate('palisade_tls_handshake_failures_total')})`, legend: '{{reason}}' }] },
        { title: 'JWKS fetches by issuer and result', description: 'Key set fetches per configured issuer: ok, error, not modified, skipped by the unknown-kid cooldown.', kind: 'timeseries', unit: 'ops', w: 8, expect: 'jwt', queries: [{ expr: `sum by (issuer, result) (${rate('palisade_jwks_fetches_total')})`, legend: '{{issuer}} {{result}}' }] },
        { title: 'Token cache hit ratio', description: 'Share of token checks answered from the verified-token caches (JWT and introspection).', kind: 'timeseries', unit: 'percentunit', w: 8, min: 0, max: 1, expect: 'jwt', queries: [{ expr: ratio(`sum by (mechanism) (${rate('palisade_token_cache_lookups_total', 'result="hit"')})`, `sum by (mechanism) (${rate('palisade_token_cache_lookups_total')})`), legend: '{{mechanism}}' }] },
        { title: 'Introspection calls by result', description: 'OAuth2 introspection calls: active, inactive, error (fails closed).', kind: 'timeseries', unit: 'ops', w: 8, expect: 'introspection', queries: [{ expr: `sum by (result) (${rate('palisade_introspection_requests_total')})`, legend: '{{result}}' }] },
      ],
    },
    {
      title: 'Authorization and audit',
      panels: [
        { title: 'Authorization denies by code', description: 'No matching rule (default deny), explicit deny rule, failed condition (tenant isolation).', kind: 'timeseries', unit: 'reqps', expect: 'authz-deny', queries: [{ expr: `sum by (code) (${rate('palisade_requests_total', 'stage="authz", verdict="deny"')})`, legend: '{{code}}' }] },
        { title: 'Would deny (audit mode)', description: 'Denies that audit (dry-run) mode let through: what enforcing would refuse.', kind: 'timeseries', unit: 'reqps', expect: 'audit', queries: [{ expr: `sum by (stage, code) (${rate('palisade_would_deny_total')})`, legend: '{{stage}} {{code}}' }] },
      ],
    },
    {
      title: 'Rate limits and block list',
      panels: [
        { title: 'Rate-limited by route and rule', description: 'Requests refused per route template and limit rule.', kind: 'timeseries', unit: 'reqps', w: 8, expect: 'ratelimit', queries: [{ expr: `sum by (route, rule) (${rate('palisade_rate_limited_total')})`, legend: '{{route}} {{rule}}' }] },
        { title: 'Block-list hits by route', description: 'Requests from blocked clients per route template.', kind: 'timeseries', unit: 'reqps', w: 8, expect: 'blocklist', queries: [{ expr: `sum by (route) (${rate('palisade_blocklist_hits_total')})`, legend: '{{route}}' }] },
        { title: 'Block-list entries', description: 'Entries on the block list by source (static, detector, manual) and kind; every sidecar holds the same list, so this is the maximum over sidecars.', kind: 'timeseries', unit: 'short', w: 8, expect: 'blocklist-entries', queries: [{ expr: `max by (source, kind) (palisade_blocklist_entries{${SEL}})`, legend: '{{source}} {{kind}}' }] },
        { title: 'Keys over global quota', description: 'Keys of fleet-wide quotas (scope: global) the sidecars hold as over quota (refused until the window ends) or near it (spending their share); every sidecar follows the same topic, so this is the maximum over sidecars. docs/quotas.md.', kind: 'timeseries', unit: 'short', w: 12, expect: 'traffic', queries: [{ expr: `max by (state) (palisade_quota_keys{${SEL}})`, legend: '{{state}}' }] },
        { title: 'Global quota refusals by rule', description: 'Requests refused with QUOTA_EXCEEDED per quota rule, across the sidecars.', kind: 'timeseries', unit: 'reqps', w: 12, expect: null, queries: [{ expr: `sum by (rule) (${rate('palisade_rate_limited_total', 'code="QUOTA_EXCEEDED"')})`, legend: '{{rule}}' }] },
      ],
    },
  ],
};
