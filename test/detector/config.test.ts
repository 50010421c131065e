// The detector's one config: defaults, validation messages that name the field, the documented
// table being current, and the process settings.
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DETECTION_IDS, configTable, loadDetectorConfig, parseDetectorConfig } from '../../detectors/config.ts';
import { detectorSettingsTable, loadDetectorSettings } from '../../detectors/settings.ts';

const DOC = readFileSync(new URL('../../docs/detector.md', import.meta.url), 'utf8');

function between(begin: string, end: string): string {
  const i = DOC.indexOf(begin);
  const j = DOC.indexOf(end);
  expect(i, begin).toBeGreaterThanOrEqual(0);
  return DOC.slice(i + begin.length, j).trim();
}

describe('detector config', () => {
  it('fills every default, frozen', () => {
    const c = parseDetectorConfig({});
    expect(Object.isFrozen(c.detections)).toBe(true);
    expect(c.engine.warmupSeconds).toBe(60);
    expect(c.detections['rate.burst']).toMatchObject({ enabled: true, window: 'short', minRate: 30, coldMinRate: 60, ratio: 4, sigma: 6 });
    expect(c.feedback.high).toEqual({ action: 'block', durationSeconds: 900 });
    expect(c.feedback.detections['probing.size']?.critical).toEqual({ action: 'alert' });
    for (const id of DETECTION_IDS) expect(c.detections[id].enabled).toBe(true);
  });

  it('refuses unknown fields and bad values, naming each', () => {
    expect(() => parseDetectorConfig({ engine: { warmupSecs: 5 }, detections: { 'rate.burst': { minRate: -1 } }, feedback: { high: { action: 'ban' } } })).toThrow(
      /config\/engine: unknown field "warmupSecs"[\s\S]*config\/detections\/rate\.burst\/minRate \(got -1\): must be >= 0[\s\S]*config\/feedback\/high\/action \(got "ban"\): must be one of "none", "alert", "block"/,
    );
    expect(() => parseDetectorConfig({ severity: { medium: 3, high: 2 } })).toThrow(/severity thresholds must rise/);
    expect(() => parseDetectorConfig({ engine: { windows: { short: { seconds: 1, buckets: 7 } } } })).toThrow(/cannot be cut into 7 whole-millisecond buckets/);
  });

  it('loads YAML from a file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'palisade-det-'));
    const file = join(dir, 'detector.yaml');
    writeFileSync(file, 'detections:\n  rate.burst: { minRate: 50 }\nalerts:\n  webhook: { url: "http://127.0.0.1:9/x", formats: [slack] }\n');
    const c = loadDetectorConfig(file);
    expect(c.detections['rate.burst'].minRate).toBe(50);
    expect(c.alerts.webhook.formats).toEqual(['slack']);
    expect(() => loadDetectorConfig(join(dir, 'missing.yaml'))).toThrow(/ENOENT/);
  });

  it('docs/detector.md lists every parameter with its current default', () => {
    expect(between('<!-- detector-config:begin -->', '<!-- detector-config:end -->')).toBe(configTable());
    expect(between('<!-- detector-settings:begin -->', '<!-- detector-settings:end -->')).toBe(detectorSettingsTable());
  });

  it('process settings: admin port 9902 by default, validated', () => {
    expect(loadDetectorSettings({})).toMatchObject({ adminPort: 9902, adminHost: '0.0.0.0', configFile: '' });
    expect(loadDetectorSettings({ PALISADE_DETECTOR_ADMIN_PORT: '19902' }).adminPort).toBe(19902);
    expect(() => loadDetectorSettings({ PALISADE_DETECTOR_ADMIN_PORT: 'x' })).toThrow(/PALISADE_DETECTOR_ADMIN_PORT: .*must be integer/);
  });
});
