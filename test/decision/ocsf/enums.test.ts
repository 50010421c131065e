/**
 * Every enum value and caption Palisade writes (src/decision/ocsf/enums.ts)
 * exists in the official OCSF 1.8.0 data, in the class or object it is
 * written to, with the same caption.
 */
import { describe, expect, it } from 'vitest';
import { CODES } from '../../../src/errors/codes.ts';
import * as E from '../../../src/decision/ocsf/enums.ts';
import { loadOcsf, type OcsfShape } from './ocsf-source.ts';

const ocsf = loadOcsf();

function caption(shape: OcsfShape, attr: string, id: number | string): string | undefined {
  const a = shape.attributes.get(attr);
  if (!a?.enum) throw new Error(`${shape.name}.${attr} has no enum`);
  return a.enum.get(String(id));
}

describe('OCSF enum values used by Palisade', () => {
  const http = ocsf.cls('http_activity');
  const df = ocsf.cls('detection_finding');
  const auth = ocsf.cls('authentication');

  it('uses the schema version it was written from', () => {
    expect(ocsf.version).toBe(E.OCSF_VERSION);
  });

  it('class and category ids and captions', () => {
    expect([http.uid, http.caption, http.categoryUid, http.categoryCaption]).toEqual([E.CLASS.httpActivity.uid, E.CLASS.httpActivity.caption, E.CATEGORY.network.uid, E.CATEGORY.network.caption]);
    expect([df.uid, df.caption, df.categoryUid, df.categoryCaption]).toEqual([E.CLASS.detectionFinding.uid, E.CLASS.detectionFinding.caption, E.CATEGORY.findings.uid, E.CATEGORY.findings.caption]);
    expect([auth.uid, auth.caption, auth.categoryUid, auth.categoryCaption]).toEqual([E.CLASS.authentication.uid, E.CLASS.authentication.caption, E.CATEGORY.iam.uid, E.CATEGORY.iam.caption]);
  });

  it('HTTP Activity activity_id per method, and every method is an http_request.http_method value', () => {
    const methods = ocsf.obj('http_request').attributes.get('http_method')?.enum;
    for (const [method, a] of Object.entries(E.HTTP_ACTIVITY)) {
      expect(caption(http, 'activity_id', a.id), method).toBe(a.caption);
      expect(methods?.has(method), method).toBe(true);
    }
    // The mapping covers the whole OCSF enum: no method falls to Other by omission.
    expect(new Set(Object.keys(E.HTTP_ACTIVITY))).toEqual(new Set(methods?.keys()));
    expect(caption(http, 'activity_id', E.ACTIVITY_UNKNOWN.id)).toBe(E.ACTIVITY_UNKNOWN.caption);
    expect(caption(http, 'activity_id', E.ACTIVITY_OTHER.id)).toBe(E.ACTIVITY_OTHER.caption);
  });

  it('severity, status, action, disposition, observation point (HTTP Activity)', () => {
    for (const [id, c] of Object.entries(E.SEVERITY)) expect(caption(http, 'severity_id', id)).toBe(c);
    for (const s of Object.values(E.STATUS)) expect(caption(http, 'status_id', s.id)).toBe(s.caption);
    for (const a of Object.values(E.ACTION)) expect(caption(http, 'action_id', a.id)).toBe(a.caption);
    for (const d of Object.values(E.DISPOSITION)) expect(caption(http, 'disposition_id', d.id)).toBe(d.caption);
    expect(caption(http, 'observation_point_id', E.OBSERVATION_POINT_DESTINATION.id)).toBe(E.OBSERVATION_POINT_DESTINATION.caption);
  });

  it('every code disposition of src/errors/codes.ts has a disposition_id', () => {
    for (const [code, spec] of Object.entries(CODES)) expect(E.DISPOSITION[spec.disposition], code).toBeDefined();
  });

  it('object enums: observable, fingerprint, user, connection info, timespan, analytic', () => {
    for (const o of Object.values(E.OBSERVABLE)) expect(ocsf.observableTypes.get(o.id)).toBe(o.caption);
    expect(caption(ocsf.obj('fingerprint'), 'algorithm_id', E.FINGERPRINT_SHA256.id)).toBe(E.FINGERPRINT_SHA256.caption);
    for (const u of Object.values(E.USER_TYPE)) expect(caption(ocsf.obj('user'), 'type_id', u.id)).toBe(u.caption);
    const conn = ocsf.obj('network_connection_info');
    expect(caption(conn, 'direction_id', E.DIRECTION_UNKNOWN.id)).toBe(E.DIRECTION_UNKNOWN.caption);
    for (const [id, c] of Object.entries(E.IP_VERSION)) expect(caption(conn, 'protocol_ver_id', id)).toBe(c);
    expect(caption(ocsf.obj('timespan'), 'type_id', E.TIMESPAN_MILLISECONDS.id)).toBe(E.TIMESPAN_MILLISECONDS.caption);
    for (const a of Object.values(E.ANALYTIC_TYPE)) expect(caption(ocsf.obj('analytic'), 'type_id', a.id)).toBe(a.caption);
  });

  it('Detection Finding and Authentication enums', () => {
    for (const a of Object.values(E.FINDING_ACTIVITY)) expect(caption(df, 'activity_id', a.id)).toBe(a.caption);
    for (const s of Object.values(E.FINDING_STATUS)) expect(caption(df, 'status_id', s.id)).toBe(s.caption);
    for (const [id, c] of Object.entries(E.CONFIDENCE)) expect(caption(df, 'confidence_id', id)).toBe(c);
    expect(caption(auth, 'activity_id', E.AUTH_ACTIVITY_LOGON.id)).toBe(E.AUTH_ACTIVITY_LOGON.caption);
    for (const p of Object.values(E.AUTH_PROTOCOL)) expect(caption(auth, 'auth_protocol_id', p.id)).toBe(p.caption);
    expect(caption(auth, 'logon_type_id', E.LOGON_TYPE_NETWORK.id)).toBe(E.LOGON_TYPE_NETWORK.caption);
  });
});
