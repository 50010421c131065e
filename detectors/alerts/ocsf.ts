/** An alert as the event on the alerts topic: an OCSF Detection Finding (class 2004) with anomaly_analyses. */
import { toOcsfDetectionFinding, type OcsfDetectionFinding } from '../../src/decision/ocsf/detection-finding.ts';
import type { Alert } from '../detector.ts';

export function encodeAlert(a: Alert): OcsfDetectionFinding {
  return toOcsfDetectionFinding({ ...a.anomaly, id: a.id, response: { action: a.action, until: a.block?.expiresAt ?? null, suppressed: a.suppressed } });
}
