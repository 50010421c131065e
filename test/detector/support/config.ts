/**
 * Detector config for tests: short warm-up and epochs so a test minute is enough; thresholds are the
 * defaults. The scripted scenarios put several attackers among a dozen clients (up to 6 of 16 under
 * a block at once), far above the default cap on the share of clients blocked at once (20%), which
 * guard.test.ts tests on its own: here the cap is half the clients.
 */
export const TEST_CONFIG = {
  engine: { warmupEvents: 10, warmupSeconds: 2 },
  population: { epochSeconds: 2, minSamples: 10 },
  feedback: { high: { action: 'block' as const, durationSeconds: 60 }, critical: { action: 'block' as const, durationSeconds: 60 } },
  guard: { maxBlockedShare: 0.5 },
};
