// Fleet-wide quotas on the real broker: three real sidecar processes, one detector; one tenant
// (one client identity) against a quota of N per minute spread over the sidecars
// (support/quota-fleet.ts has the scenario; quota-fleet-instances.test.ts runs it with two
// detector instances and a quota whose key spans clients).
import { quotaFleetSuite } from './support/quota-fleet.ts';

const N = 150;

quotaFleetSuite({
  title: 'global quota across three sidecar processes, one detector (real broker)',
  tag: 'quota',
  n: N,
  detectors: 1,
  tenant: { clients: ['spiffe://test.local/ns/shop/sa/tenant-a'], path: '/api/orders' },
  other: { client: 'spiffe://test.local/ns/shop/sa/tenant-b', path: '/api/orders' },
  policy: `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: quota-fleet, version: "1" }
spec:
  authentication:
    mtls: { trustDomains: [test.local] }
    defaultRequire: mtls
  authorization:
    rules:
      - { id: all, paths: ["/**"], authenticated: true }
  rateLimits:
    rules:
      - { id: per-tenant, scope: global, key: [identity], limit: ${N}, window: minute, paths: ["/api/**"] }
      - { id: warm-up, scope: global, key: [identity], limit: 1, window: hour, paths: ["/warm-up"] }
`,
});
