/**
 * config.feedback: what an anomaly does (nothing, an alert, or an alert and a block for a
 * duration), by severity, with per-detection overrides.
 */
import { DETECTION_IDS, int, keyed, obj, SEVERITIES } from './kit.ts';

const ACTIONS = ['none', 'alert', 'block'] as ('none' | 'alert' | 'block')[];

const actionSpec = (def: { action: 'none' | 'alert' | 'block'; durationSeconds?: number }) => ({
  type: 'object' as const,
  additionalProperties: false as const,
  required: ['action'] as const,
  default: def,
  description: `What an anomaly of this severity does: alert only, block the client for durationSeconds, or nothing. Default ${def.action}${def.durationSeconds ? ` for ${def.durationSeconds} s` : ''}.`,
  properties: {
    action: { type: 'string' as const, enum: ACTIONS, description: 'none: count only; alert: publish the alert; block: alert and block the client.' },
    durationSeconds: int(def.durationSeconds ?? 900, 1, 'How long a block lasts, seconds (block only). Default 900.'),
  },
});

/** An override for one detection and severity: no defaults, so what is not written is not there. */
const actionOverride = {
  type: 'object' as const,
  additionalProperties: false as const,
  properties: keyed(SEVERITIES, () => ({
    type: 'object' as const,
    additionalProperties: false as const,
    required: ['action'] as const,
    properties: {
      action: { type: 'string' as const, enum: ACTIONS },
      durationSeconds: { type: 'integer' as const, minimum: 1, description: 'Block duration, seconds.' },
    },
  })),
};

export const feedbackSchema = obj('What an anomaly does, by severity, with per-detection overrides. A manual unblock wins until the detector sees new evidence (events after the unblock).', {
  low: actionSpec({ action: 'none' }),
  medium: actionSpec({ action: 'alert' }),
  high: actionSpec({ action: 'block', durationSeconds: 900 }),
  critical: actionSpec({ action: 'block', durationSeconds: 3600 }),
  detections: {
    type: 'object' as const,
    additionalProperties: false as const,
    default: { 'probing.size': { high: { action: 'alert' }, critical: { action: 'alert' } } },
    description: 'Per-detection overrides by severity, e.g. {"probing.size": {"critical": {"action": "alert"}}}. Default: probing.size never blocks.',
    properties: keyed(DETECTION_IDS, () => actionOverride),
  },
});
