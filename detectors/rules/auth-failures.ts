/**
 * auth.failures (fast: credential stuffing, token guessing) and auth.slow
 * (the same spread over many minutes to stay under fast thresholds):
 * authentication failures (AUTHN_* and upstream 401), per client. Authorization
 * denials (403) are not counted: a valid identity the policy denies is no
 * credential stuffer (enumeration.forbidden looks at denials with many paths).
 */
import { M_FAIL, type ClientState } from '../engine/client-state.ts';
import type { RuleContext } from './context.ts';
import type { DecisionRecord } from '../../src/decision/record.ts';
import { checkCount } from './count.ts';

export function checkAuthFailures(e: RuleContext, c: ClientState, r: DecisionRecord, _t: number, warm: boolean): void {
  checkCount(e, c, r, 'auth.failures', e.detections['auth.failures'], M_FAIL, 'authentication failures', warm);
  checkCount(e, c, r, 'auth.slow', e.detections['auth.slow'], M_FAIL, 'authentication failures', warm);
}
