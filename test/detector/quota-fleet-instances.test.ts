// Fleet-wide quotas on the real broker with two detector instances in one group: a quota whose
// key spans clients (the tenant's API prefix, called by twelve client identities, whose decisions
// land on partitions of both instances' aggregators) is counted whole, from each instance's own
// partitions plus the counts the other published: the tenant gets at most N plus a small
// overshoot across three sidecar processes, not up to N per instance (support/quota-fleet.ts).
import { quotaFleetSuite } from './support/quota-fleet.ts';

const N = 150;

quotaFleetSuite({
  title: 'global quota spanning clients, three sidecar processes, two detector instances (real broker)',
  tag: 'quota-two',
  n: N,
  detectors: 2,
  tenant: { clients: Array.from({ length: 12 }, (_, i) => `spiffe://test.local/ns/tenant-a/sa/client-${i}`), path: '/tenant-a/orders' },
  other: { client: 'spiffe://test.local/ns/tenant-b/sa/client-0', path: '/tenant-b/orders' },
  policy: `
apiVersion: palisade.dev/v1
kind: Policy
metadata: { name: quota-fleet-two, version: "1" }
spec:
  authentication:
    mtls: { trustDomains: [test.local] }
    defaultRequire: mtls
  authorization:
    rules:
      - { id: all, paths: ["/**"], authenticated: true }
  rateLimits:
    rules:
      # Keyed by route (the rule's path template): every client of the tenant counts against one quota.
      - { id: tenant-a, scope: global, key: [route], limit: ${N}, window: minute, paths: ["/tenant-a/**"] }
      - { id: tenant-b, scope: global, key: [route], limit: ${N}, window: minute, paths: ["/tenant-b/**"] }
      - { id: warm-up, scope: global, key: [identity], limit: 1, window: hour, paths: ["/warm-up"] }
`,
});
