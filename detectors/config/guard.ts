/**
 * config.guard: the blast-radius guard and the caps on automatic blocks. They keep one operator
 * mistake (a policy that denies everyone, an identity-provider outage) from turning into blocks
 * of every client; manual blocks are never capped.
 */
import { bool, int, num, obj } from './kit.ts';

export const guardSchema = obj('The blast-radius guard and the caps on automatic blocks (per detector instance). While the guard holds, automatic blocks of the failure detections (auth.*, enumeration.not-found, enumeration.forbidden, probing.schema, population.auth-failures/not-found/violations) become alerts; rate detections still block. Manual blocks are never capped.', {
  enabled: bool(true, 'Run the guard and the caps. Default true.'),
  failingShare: num(0.3, 0, 'The guard holds when at least this share of the active clients (seen in the medium window) are failing at once, fraction. Also checked when a failure detection is about to block a client: among the clients seen since that client started failing, fraction. Default 0.3.', 1),
  minActiveClients: int(10, 1, 'The share tests (failingShare, policyChangeShare, maxBlockedShare) apply only with at least this many active clients: in a handful of clients one attacker is already a large share, clients. Default 10.'),
  clientMinFailures: int(2, 1, 'A client counts as failing when its last this many requests all failed (401, 403, 404, violations), events. Default 2.'),
  policyChangeSeconds: int(600, 0, 'After a new policy hash appears in the decisions, for this long the guard also holds on the policy-change test (policyChangeMinClients, policyChangeShare, dominantCodeShare), seconds. Default 600.'),
  policyChangeMinClients: int(3, 1, 'Policy-change test: at least this many clients failing, clients. Default 3.'),
  policyChangeShare: num(0.1, 0, 'Policy-change test: at least this share of the active clients failing, fraction. Default 0.1.', 1),
  dominantCodeShare: num(0.8, 0, 'Policy-change test: one reason code is the last failure of at least this share of the failing clients, fraction. Default 0.8.', 1),
  recoverSeconds: int(60, 0, 'The guard lets go once its tests have been false for this long, seconds of event time. Default 60.'),
  maxBlocksPerMinute: int(50, 0, 'Automatic blocks issued in any 60 s, at most; beyond it anomalies are alerted, not blocked (0 = no automatic blocks at all), blocks. Default 50.'),
  maxBlockedShare: num(0.2, 0, 'Active clients under a block at once (refused by the block list within the last 10 s, or just blocked: they keep knocking), at most this share of the active clients; beyond it anomalies are alerted, not blocked. Blocked clients that went away do not count, fraction. Default 0.2.', 1),
});
