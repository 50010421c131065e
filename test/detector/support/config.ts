/** Detector config for tests: short warm-up and epochs so a test minute is enough; thresholds are the defaults. */
export const TEST_CONFIG = {
  engine: { warmupEvents: 10, warmupSeconds: 2 },
  population: { epochSeconds: 2, minSamples: 10 },
  feedback: { high: { action: 'block' as const, durationSeconds: 60 }, critical: { action: 'block' as const, durationSeconds: 60 } },
};
